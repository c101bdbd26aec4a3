"""Ctrl-C (or SIGTERM) at any moment of the local stack's start-up leaves no process behind.

``python -m scripts.local_stack up`` runs as a terminal's foreground job would (its own process
group, signalled as a whole); the signal is sent while a given service is still starting. Every
process the stack starts inherits a marker in its environment, so a survivor is found even after
its parent is gone (an orphan is adopted by init and no longer looks like a descendant).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from local_runtime.processes import REPO_ROOT

MARKER = "ACSREC_START_UP_TEST"

#: A service is "starting" from the moment its process exists; each name is in its command line.
SERVICES = (
    "azurite",
    "emulator",
    "scripts.serve_api",
    "scripts.archive_worker",
    "scripts.reconcile",
)


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == marker and process.status() != "zombie":
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _command_lines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return lines


def _wait_until_starting(marker: str, service: str, launcher: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(service in line for line in _command_lines(_marked(marker))):
            return
        assert launcher.poll() is None, launcher.communicate()[0]
        time.sleep(0.02)
    raise AssertionError(f"{service} never started")


@pytest.mark.parametrize(
    ("service", "signum"),
    [
        *((service, signal.SIGINT) for service in SERVICES),
        ("azurite", signal.SIGTERM),
        ("scripts.serve_api", signal.SIGTERM),
    ],
)
def test_a_stop_during_start_up_stops_every_service_started_so_far(
    tmp_path: Path, service: str, signum: signal.Signals
) -> None:
    marker = uuid.uuid4().hex
    launcher = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_stack", "up", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, MARKER: marker, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        _wait_until_starting(marker, service, launcher)
        os.killpg(launcher.pid, signum)
        output, _ = launcher.communicate(timeout=60)
        survivors = _marked(marker)
        _, alive = psutil.wait_procs(survivors, timeout=15)

        assert _command_lines(alive) == [], output
        assert launcher.returncode == 0, output
        assert "Traceback" not in output, output
        assert "Stopped." in output
    finally:
        for process in _marked(marker):  # never leave one behind, even when the test fails
            process.kill()
        if launcher.poll() is None:
            launcher.kill()
