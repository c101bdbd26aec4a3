"""`make up` as a new user runs it: the README's quickstart, a worker killed mid-copy, Ctrl-C.

One `make up` (the real Makefile target, in its own session like a terminal's foreground job)
serves the module; the tests run in file order and the last one stops it with Ctrl-C:

1. what it prints and the env file it writes can be pasted and sourced;
2. the README's quickstart block, extracted from README.md between its markers, runs as it is
   (only the env file and the download folder are pointed into a temp dir) and ends with a
   verified download;
3. the archive worker killed in the middle of a copy is restarted by `make up` with a log
   line, and the copy resumes after its last staged block and completes with the size and MD5
   of the source;
4. Ctrl-C stops everything quietly (no make error), removes the env file and keeps the logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest
from azure.storage.blob import ContainerClient

from emulator.simulation import EmulatorSimulation
from local_runtime.processes import REPO_ROOT

README = REPO_ROOT / "README.md"
QUICKSTART = re.compile(r"<!-- quickstart:start -->(.*?)<!-- quickstart:end -->", re.S)
SAMPLE_OUTPUT = re.compile(
    r"<!-- quickstart-output:start -->\n```text\n(.*?)```\n<!-- quickstart-output:end -->", re.S
)
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
MAKE = shutil.which("make") or "make"
BASH = shutil.which("bash") or "bash"
#: Small blocks, so that a short recording is copied in several of them and a kill lands between.
BLOCK_SIZE = 256 * 1024


@dataclass
class MakeUp:
    process: subprocess.Popen[str]
    state_dir: Path
    env_file: Path
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        until(lambda: text in self.output() or self.process.poll() is not None, timeout)
        assert text in self.output(), self.output()
        return self.output()

    def settings(self) -> dict[str, str]:
        """The env file as a shell sees it after `source`."""
        shown = subprocess.run(
            [BASH, "-c", f'source "{self.env_file}" && env -0'],
            capture_output=True,
            check=True,
        ).stdout.decode()
        return dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)


def until(condition: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s")


@pytest.fixture(scope="module")
def make_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeUp]:
    folder = tmp_path_factory.mktemp("make-up")
    state_dir, env_file = folder / "state", folder / "up.env"
    process = subprocess.Popen(
        [MAKE, "--no-print-directory", "up", f"STATE_DIR={state_dir}", f"ENV_FILE={env_file}"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "ARCHIVE_BLOCK_SIZE_BYTES": str(BLOCK_SIZE)},
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    running = MakeUp(process, state_dir, env_file)
    reader = threading.Thread(target=lambda: running.lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        running.wait_for("Press Ctrl-C to stop.", timeout=120)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def test_make_up_prints_export_lines_and_writes_a_file_to_source(make_up: MakeUp) -> None:
    settings = make_up.settings()
    [export] = [line.strip() for line in make_up.lines if line.strip().startswith("export ")]
    printed = dict(item.split("=", 1) for item in export.removeprefix("export ").split(" "))

    assert set(printed) == {"RECORDINGS_API_URL", "RECORDINGS_FUNCTION_KEY", "ACS_EMULATOR_URL"}
    assert all(settings[name] == value for name, value in printed.items())
    assert printed["RECORDINGS_API_URL"].endswith("/api")
    assert f"source {make_up.env_file}" in make_up.output()
    assert oct(make_up.env_file.stat().st_mode & 0o777) == oct(0o600)
    # every function setting is there too, for the operations scripts
    assert settings["ARCHIVE_STORAGE_CONNECTION_STRING"].startswith("DefaultEndpointsProtocol=")
    health = httpx.get(f"{settings['RECORDINGS_API_URL']}/health", timeout=10)
    assert health.json() == {"status": "ok"}


def test_the_readme_quickstart_runs_as_written(make_up: MakeUp, tmp_path: Path) -> None:
    first, second = BASH_BLOCK.findall(QUICKSTART.search(README.read_text()).group(1))
    assert first.strip() == "make up"
    assert ".local/up.env" in second and "--out recording" in second
    script = second.replace(".local/up.env", str(make_up.env_file)).replace(
        "--out recording", f"--out {tmp_path / 'recording'}"
    )

    result = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every file verified" in result.stdout
    assert sorted(p.name for p in (tmp_path / "recording").iterdir()) == [
        "chunk-0000.metadata.json",
        "chunk-0000.wav",
        "manifest.json",
    ]
    history = result.stdout.split("state history")[1].split("\narchive\n")[0]
    api_states = [line.split()[0] for line in history.splitlines() if line.endswith(" api")]
    assert api_states == ["active", "inactive", "active", "stopped"]
    # What the README shows the commands print is what they print.
    sample = SAMPLE_OUTPUT.search(README.read_text())
    assert sample is not None, "README.md: no quickstart-output block after the quickstart"
    printed = result.stdout.replace(str(tmp_path / "recording"), "recording")
    problem = sample_mismatch(sample.group(1), printed.splitlines())
    assert problem is None, f"{problem}\n--- printed:\n{printed}"


#: What varies from run to run in a sample: times, sizes and counts; ``…`` is what is left out.
_TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
_NUMBER = r"\d{1,3}(?:,\d{3})*"
ELLIPSIS = "…"


def sample_mismatch(sample: str, printed: list[str]) -> str | None:
    """Why ``printed`` does not show each command's sample lines in order, or None.

    The sample is ``$ command`` lines, each followed by lines of what it prints. A section's lines
    must appear in the output consecutively and the sections in order (a command the sample does
    not show may print between them). In a line, whitespace runs are one space, a time or a number
    stands for any, and ``…`` for any text; a line of only ``…`` for any lines. Rows with a time
    in them (the state history) may come in any order among themselves: two events a millisecond
    apart are not ordered by the code.
    """
    position = 0
    for section in _sections(sample):
        end = next(
            (
                found
                for start in range(position, len(printed) + 1)
                if (found := _match_lines(section, printed, start)) is not None
            ),
            None,
        )
        if end is None:
            return "the output has no lines like these, in this order:\n" + "\n".join(section)
        position = end
    return None


def _sections(sample: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for line in sample.rstrip("\n").splitlines():
        if line.startswith("$ "):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    return [section for section in sections if section]


def _line_pattern(line: str) -> re.Pattern[str]:
    def token(text: str) -> str:
        if re.fullmatch(_TIMESTAMP, text):
            return _TIMESTAMP
        if re.fullmatch(_NUMBER, text):
            return _NUMBER
        return r"\S*?".join(re.escape(piece) for piece in text.split(ELLIPSIS))

    return re.compile(" ".join(token(word) for word in line.split()))


def _normal(line: str) -> str:
    return " ".join(line.split())


def _match_lines(sample: list[str], printed: list[str], start: int) -> int | None:
    """The index after ``sample`` matched at ``printed[start:]``, or None."""
    if not sample:
        return start
    if sample[0].strip() == ELLIPSIS:
        return next(
            (
                end
                for skip in range(start, len(printed) + 1)
                if (end := _match_lines(sample[1:], printed, skip)) is not None
            ),
            None,
        )
    rows = 1
    if re.search(_TIMESTAMP, sample[0]):
        while rows < len(sample) and re.search(_TIMESTAMP, sample[rows]):
            rows += 1
    lines = [_normal(line) for line in printed[start : start + rows]]
    if len(lines) < rows:
        return None
    unmatched = [_line_pattern(line) for line in sample[:rows]]
    for line in lines:
        fitting = next((p for p in unmatched if p.fullmatch(line)), None)
        if fitting is None:
            return None
        unmatched.remove(fitting)
    return _match_lines(sample[rows:], printed, start + rows)


def test_a_worker_killed_mid_copy_is_restarted_and_the_copy_completes(make_up: MakeUp) -> None:
    settings = make_up.settings()
    simulation = EmulatorSimulation(settings["ACS_EMULATOR_URL"])
    container = ContainerClient.from_connection_string(
        settings["ARCHIVE_STORAGE_CONNECTION_STRING"], "recordings"
    )
    api = httpx.Client(
        base_url=settings["RECORDINGS_API_URL"],
        headers={"x-functions-key": settings["RECORDINGS_FUNCTION_KEY"]},
        timeout=30,
    )
    # Five channels of 16 kHz audio for 6 s: about 1 MB, 4 blocks, copied at 128 kB/s.
    call = simulation.create_call([f"8:acs:kill-{n}" for n in range(5)])
    started = api.post(
        "/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio", "channel": "unmixed"},
    )
    assert started.status_code == 201, started.text
    recording_id = started.json()["recordingId"]
    simulation.set_faults(
        [{"operation": "download_recording", "kind": "slow", "bytesPerSecond": 128_000}]
    )
    try:
        time.sleep(6)
        assert api.delete(f"/recordings/{quote(recording_id, safe='')}").status_code == 200
        source = until(
            lambda: _source_file(simulation, make_up.state_dir, recording_id), timeout=30
        )
        staged = until(lambda: _staged_blocks(container, recording_id) >= 2, timeout=60)
        worker = _worker(make_up)
        os.killpg(worker.pid, signal.SIGKILL)

        make_up.wait_for("archive-worker was killed by SIGKILL; restarting it", timeout=10)
        archive = until(lambda: _final_archive(api, recording_id), timeout=120)
    finally:
        simulation.set_faults([])

    assert staged
    assert archive["status"] == "archived", archive
    manifest = json.loads(container.download_blob(archive["manifestBlob"]).readall())
    [chunk] = manifest["chunks"]
    archived = container.download_blob(chunk["contentBlob"]).readall()
    assert len(archived) == len(source) == chunk["contentBytes"]
    expected_md5 = base64.b64encode(hashlib.md5(source).digest()).decode()  # noqa: S324
    assert chunk["contentMd5"] == expected_md5
    assert base64.b64encode(hashlib.md5(archived).digest()).decode() == expected_md5  # noqa: S324
    log = (make_up.state_dir / "logs" / "archive-worker.log").read_text()
    assert "[supervisor] archive-worker was killed by SIGKILL; restarting it" in log
    resumed = re.search(r"resuming at byte (\d+) after (\d+) staged blocks", log)
    assert resumed is not None, log[-3000:]
    assert int(resumed.group(1)) == int(resumed.group(2)) * BLOCK_SIZE > 0


def _source_file(
    simulation: EmulatorSimulation, state_dir: Path, recording_id: str
) -> bytes | None:
    """The file ACS rendered for the recording, read from the emulator's data dir."""
    for stored in simulation.objects()["objects"]:
        if stored["recordingId"] == recording_id and stored["status"] == "stored":
            path = state_dir / "emulator" / "objects" / stored["documentId"] / "content.wav"
            if path.exists():
                return path.read_bytes()
    return None


def _staged_blocks(container: ContainerClient, recording_id: str) -> int:
    for blob in container.list_blobs(include=["uncommittedblobs"]):
        if quote(recording_id, safe="") in blob.name and blob.name.endswith(".wav"):
            _, uncommitted = container.get_blob_client(blob.name).get_block_list("uncommitted")
            return len(uncommitted)
    return 0


def _worker(make_up: MakeUp) -> psutil.Process:
    [worker] = [
        child
        for child in psutil.Process(make_up.process.pid).children(recursive=True)
        if "scripts.archive_worker" in " ".join(child.cmdline())
    ]
    return worker


def _final_archive(api: httpx.Client, recording_id: str) -> dict[str, Any] | None:
    view = api.get(f"/recordings/{quote(recording_id, safe='')}").json()
    archive = (view.get("registry") or {}).get("archive") or {}
    return archive if archive.get("status") in {"archived", "lost", "failed"} else None


def test_ctrl_c_stops_everything_quietly_and_keeps_the_logs(make_up: MakeUp) -> None:
    children = psutil.Process(make_up.process.pid).children(recursive=True)
    stack = next(c for c in children if "scripts.local_stack" in " ".join(c.cmdline()))

    os.killpg(make_up.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    make_up.process.wait(timeout=60)
    _, alive = psutil.wait_procs(children, timeout=30)

    assert not alive, [c.cmdline() for c in alive]
    output = make_up.wait_for("State and logs kept in", timeout=10)
    assert "Stopped." in output
    assert "Error" not in output and "Traceback" not in output, output[-2000:]
    assert make_up.process.returncode == -signal.SIGINT  # make itself ends as interrupted
    assert not make_up.env_file.exists()
    assert (make_up.state_dir / "logs" / "api.log").stat().st_size > 0
    assert stack.pid not in psutil.pids() or stack.status() == psutil.STATUS_ZOMBIE


_SAMPLE = """$ tool show "$ID"   # excerpt
id      eyJQbGF0…
…
state     at                           source
active    2026-12-03T10:45:08.143532Z  api
inactive  2026-12-03T10:45:12.922Z     callback
bytes   853,112
$ tool done
every file verified
"""


def test_a_sample_matches_output_that_differs_only_in_what_varies() -> None:
    printed = [
        "id   eyJQbGF0Zm9yb",
        "live  yes",
        "",
        "state     at                           source",
        "inactive  2026-12-04T01:02:03.000001+00:00  callback",  # another order, another format
        "active    2026-12-04T01:02:02Z  api",
        "bytes  1,234,567",
        "a line of a command the sample does not show",
        "every file verified",
    ]
    assert sample_mismatch(_SAMPLE, printed) is None


@pytest.mark.parametrize(
    ("line", "replacement"),
    [
        ("id   eyJQbGF0Zm9yb", "id   eyJSZWNvcmRpbmc"),  # an id of another shape
        ("active    2026-12-04T01:02:02Z  api", "stopped   2026-12-04T01:02:02Z  api"),
        ("bytes  1,234,567", "size  1,234,567"),
        ("every file verified", "2 files verified"),
    ],
)
def test_a_sample_does_not_match_output_that_drifted(line: str, replacement: str) -> None:
    printed = [
        "id   eyJQbGF0Zm9yb",
        "state     at                           source",
        "active    2026-12-04T01:02:02Z  api",
        "inactive  2026-12-04T01:02:03Z  callback",
        "bytes  1,234,567",
        "every file verified",
    ]
    assert sample_mismatch(_SAMPLE, printed) is None
    drifted = [replacement if entry == line else entry for entry in printed]
    assert sample_mismatch(_SAMPLE, drifted) is not None
