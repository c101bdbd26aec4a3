"""`make up`'s supervision: a dead function process is restarted with a log line, within a limit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local_runtime.processes import ManagedProcess
from local_runtime.stack import LocalStack, run_supervised


def _process(name: str, code: str, log: Path) -> ManagedProcess:
    return ManagedProcess(
        name=name, argv=[sys.executable, "-c", code], ready=lambda: True, log_path=log
    ).start()


def test_a_process_that_keeps_dying_is_restarted_up_to_the_limit_then_the_stack_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = LocalStack(state_dir=tmp_path)
    stack.emulator = _process("emulator", "import time; time.sleep(60)", tmp_path / "emu.log")
    stack.worker = _process("archive-worker", "raise SystemExit(3)", tmp_path / "worker.log")
    try:
        code = run_supervised(stack, restart_limit=2, window_seconds=60, poll_seconds=0.05)
    finally:
        stack.emulator.stop()

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err == [
        "local stack: archive-worker exited with code 3; restarting it "
        "(restart 1 of 2 allowed in 1 min)",
        "local stack: archive-worker exited with code 3; restarting it "
        "(restart 2 of 2 allowed in 1 min)",
        "local stack: archive-worker exited with code 3 after 2 restarts in 1 min; stopping the "
        f"stack (see {tmp_path / 'worker.log'}).",
    ]
    log = (tmp_path / "worker.log").read_text()
    assert log.count("[supervisor] archive-worker exited with code 3; restarting it") == 2


def test_an_infrastructure_process_that_stops_stops_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = LocalStack(state_dir=tmp_path)
    stack.emulator = _process("emulator", "raise SystemExit(1)", tmp_path / "emu.log")
    assert stack.emulator.process is not None
    stack.emulator.process.wait()

    assert run_supervised(stack, poll_seconds=0.05) == 1
    assert (
        capsys.readouterr().err == "local stack: emulator exited with code 1; stopping the stack.\n"
    )
