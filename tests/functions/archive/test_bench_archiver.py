"""The archiver benchmark runs end to end (tiny sizes here; `make bench` uses 100 MiB and 1 GiB)."""

from __future__ import annotations

import pytest

from scripts import bench_archiver


def test_bench_reports_throughput_memory_and_a_clean_drain(
    capsys: pytest.CaptureFixture,
) -> None:
    bench_archiver.main(
        ["--sizes-mib", "2,4", "--block-size-mib", "1", "--recordings", "3", "--repeat", "1"]
    )
    table = capsys.readouterr().out
    rows = dict(
        (cells[1].strip(), cells[2].strip())
        for cells in (line.split("|") for line in table.splitlines()[2:])
    )
    assert rows["archived / archived twice"] == "3 / 0 (ok)"
    for size in (2, 4):
        assert rows[f"{size} MiB chunk: archive worker"].endswith("MiB/s")
        worker_peak = float(rows[f"{size} MiB chunk: peak RSS archive worker"].split()[0])
        assert 20 < worker_peak <= bench_archiver.RSS_LIMIT_MB
    assert "time to drain" in table
