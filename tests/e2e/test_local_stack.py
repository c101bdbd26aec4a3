"""`make local` and `make up` as a person runs them: real processes, the real demo, clean exits."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from emulator.simulation import EmulatorSimulation
from local_runtime.demo import PARTICIPANTS, RecordingApi, check_recording, run_demo
from local_runtime.processes import AZURITE_ACCOUNT, AZURITE_KEY, REPO_ROOT
from local_runtime.stack import LocalStack, running_stack
from tests.support.event_schemas import schema_problems


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


#: Azurite's public development account, in place of the README's DefaultAzureCredential().
AZURITE_CREDENTIAL = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}


def _wait_gone(processes: list[psutil.Process], timeout: float = 20.0) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def test_demo_verifies_every_file_catches_a_mismatch_and_stops_every_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_stack(tmp_path, emulator_args=("--clock", "manual")) as stack:
        services = [stack.emulator, stack.api, stack.worker, stack.reconciler, stack.azurite.proc]
        pids = [s.process.pid for s in services if s is not None and s.process is not None]
        assert len(pids) == 5
        assert run_demo(api_url=stack.api_url, function_key=stack.function_key, stack=stack) == 0
        # One of the two files reached the archive only through the reconciler.
        assert len(EmulatorSimulation(stack.emulator_url).dead_lettered()) == 1
        _assert_each_archive_was_announced(stack, capsys.readouterr().out)
        _assert_the_readme_consumer_downloads_an_announced_archive(stack)
        _assert_checks_catch_swapped_channels(stack)
    assert not [pid for pid in pids if _is_running(pid)]


def _assert_each_archive_was_announced(stack: LocalStack, demo_output: str) -> None:
    """The topic received one RecordingArchived per recording, each as its schema says, and the
    demo printed them."""
    events = [entry["event"] for entry in EmulatorSimulation(stack.emulator_url).topic_events()]
    archived = [e for e in events if e["type"] == "AcsCallRecording.RecordingArchived"]
    assert len({e["data"]["recordingId"] for e in archived}) == 2
    assert [problem for e in events for problem in schema_problems(e)] == []
    assert f"Events received by the topic ({len(events)})" in demo_output
    for event in archived:
        assert f"id {event['id']}" in demo_output


def _assert_the_readme_consumer_downloads_an_announced_archive(stack: LocalStack) -> None:
    """The README's consumer example, run as written against a queue that holds one archived
    event as Event Grid writes it (base64 JSON), with Azurite, the local API and its key in place
    of the placeholders: it downloads every file and checks each MD5."""
    readme = (REPO_ROOT / "README.md").read_text()
    match = re.search(r"\*\*Consume\.\*\*.*?```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "the README's consumer example is gone"
    assert stack.azurite is not None
    code = (
        match.group(1)
        .replace('"https://<account>.queue.core.windows.net"', repr(stack.azurite.queue_endpoint))
        .replace("DefaultAzureCredential()", repr(AZURITE_CREDENTIAL))
        .replace('"<API_BASE_URL>"', repr(f"{stack.api_url}/api"))
        .replace('"<function key>"', repr(stack.function_key))
    )
    events = [entry["event"] for entry in EmulatorSimulation(stack.emulator_url).topic_events()]
    archived = next(e for e in events if e["type"] == "AcsCallRecording.RecordingArchived")
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, "qa-recordings")
    queue.create_queue()
    queue.send_message(base64.b64encode(json.dumps(archived).encode()).decode())

    namespace: dict[str, object] = {}
    exec(compile(code, "README.md consumer example", "exec"), namespace)  # noqa: S102

    assert namespace["file"] == archived["data"]["files"][-1]  # it went through every file
    assert len(namespace["body"]) == archived["data"]["files"][-1]["sizeBytes"]  # type: ignore[arg-type]
    assert queue.peek_messages() == []  # handled and deleted


def _is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_checks_catch_swapped_channels(stack: LocalStack) -> None:
    """The demo's checks can fail: expecting the channels in reverse order is reported."""
    container = _archive_container(stack)
    manifests = [
        _manifest(container, b.name)
        for b in container.list_blobs()
        if b.name.endswith("manifest.json")
    ]
    manifest = next(m for m in manifests if m["formatType"] == "wav")
    api = RecordingApi(stack.api_url, stack.function_key)
    archive = api.get(manifest["recordingId"])["registry"]["archive"]
    reversed_order = [raw for raw, _ in reversed(PARTICIPANTS)]
    expected = {"label": "unmixed wav", "seconds": 7, "channel_tones": reversed_order}

    checks = check_recording(container, manifest["recordingId"], archive, expected)

    assert checks and not checks[0].verified
    assert any("expected" in problem for problem in checks[0].problems)


def _archive_container(stack: LocalStack) -> ContainerClient:
    return ContainerClient.from_connection_string(
        stack.function_env()["ARCHIVE_STORAGE_CONNECTION_STRING"], "recordings"
    )


def _manifest(container: ContainerClient, name: str) -> dict:
    return json.loads(container.download_blob(name).readall())


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_keeps_running_until_stopped_and_leaves_nothing_behind(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """Without --state-dir: a temp dir (here under TMPDIR), whose logs outlive the stack."""
    env_file = tmp_path / "up.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.local_stack", "up", "--env-file", str(env_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)},
    )
    try:
        output = _read_until(process, "Press Ctrl-C to stop.", timeout=90)
        assert "export RECORDINGS_API_URL=" in output
        assert oct(env_file.stat().st_mode & 0o777) == oct(0o600)
        children = _descendants(process.pid)
        assert len(children) >= 4, [c.name() for c in children]
        settings = _sourced(env_file)
        secrets = (settings["ACS_ACCESS_KEY"], settings["LOCAL_FUNCTION_KEY"])
        assert settings["RECORDINGS_FUNCTION_KEY"] == settings["LOCAL_FUNCTION_KEY"]
        for child in children:
            command_line = " ".join(child.cmdline())
            assert not any(secret in command_line for secret in secrets), child.name()

        time.sleep(1.0)
        assert process.poll() is None, "the stack must keep running until it is stopped"
        process.send_signal(stop_signal)
        rest, _ = process.communicate(timeout=30)

        assert process.returncode == 0, rest
        assert not _wait_gone(children), "a service outlived the stack"
        assert not env_file.exists(), "the env file of a stopped stack is removed"
        [state] = tmp_path.glob("acsrec-*")
        assert f"Logs kept in {state / 'logs'}" in rest
        assert sorted(p.name for p in state.iterdir()) == ["logs"]  # the data is gone
        assert {"api.log", "archive-worker.log", "emulator.log", "azurite.log"} <= {
            p.name for p in (state / "logs").iterdir()
        }
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _sourced(env_file: Path) -> dict[str, str]:
    """The variables a shell has after `source env_file` (values with any character survive)."""
    shown = subprocess.run(
        [shutil.which("bash") or "bash", "-c", f'set -a; source "{env_file}"; env -0'],
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    ).stdout.decode()
    return dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            if marker in line:
                return "".join(seen)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")
