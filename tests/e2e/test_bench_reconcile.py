"""The guard benchmark runs end to end (10 recordings here; `make bench` stops 200)."""

from __future__ import annotations

import pytest

from scripts import bench_reconcile


def test_bench_recovers_what_it_can_marks_the_rest_and_archives_nothing_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = bench_reconcile.main(
        [
            "--recordings", "10",
            "--dead-lettered", "0.2",
            "--never-sent", "0.1",
            "--poisoned", "0.1",
            "--every", "1",
            "--timeout", "120",
        ]
    )  # fmt: skip

    table = capsys.readouterr().out
    rows = {
        cells[1].strip(): cells[2].strip()
        for cells in (line.split("|") for line in table.splitlines()[2:])
    }
    assert code == 0, table
    assert rows["recordings stopped"] == (
        "10 (6 delivered, 2 dead-lettered, 1 never sent, 1 poisoned)"
    )
    assert rows["archived / archived twice"] == "9 / 0 (ok)"
    assert rows["never sent: marked overdue by the run at stop + 31 min"].startswith("1/1 in ")
    assert rows["never sent: marked lost by the run at stop + 25 h 5 min"].startswith("1/1 in ")
