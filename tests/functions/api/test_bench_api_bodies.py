"""The large-body benchmark runs end to end (small bodies here; `make bench` sends 5 x 19.5 MB)."""

from __future__ import annotations

import pytest

from scripts import bench_api_bodies


def test_bench_reports_refusals_and_memory(capsys: pytest.CaptureFixture) -> None:
    assert bench_api_bodies.main(["--clients", "2", "--mb", "1"]) == 0
    rows = dict(
        (cells[1].strip(), cells[2].strip())
        for cells in (line.split("|") for line in capsys.readouterr().out.splitlines()[2:])
    )
    assert "answers 401, 401" in rows["2 x 1.0 MB, no key"]
    assert "answers 413, 413" in rows["2 x 1.0 MB, with the key"]
    assert "-> peak" in rows["2 x 1.0 MB, no key"]
