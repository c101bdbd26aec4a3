"""The `recordings` CLI as a person runs it: a subprocess against the stack `make local` starts.

One stack (Azurite, emulator on its manual clock, API, archive worker, all real processes) serves
the module; the demo runs on it first, then the CLI drives its own call from start to a verified
download, and every failure mode ends with its documented exit code and a one-line message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.storage.blob import ContainerClient

from emulator.simulation import EmulatorSimulation
from local_runtime.demo import PARTICIPANTS, run_demo
from local_runtime.processes import REPO_ROOT, free_port
from local_runtime.stack import LocalStack, running_stack
from recordings_cli.cli import ID_WIDTH


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("stack"), emulator_args=("--clock", "manual")
    ) as running:
        demo = run_demo(api_url=running.api_url, function_key=running.function_key, stack=running)
        assert demo == 0, "the demo failed on this stack"
        yield running


def recordings(
    stack: LocalStack, *args: str, key: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m scripts.recordings ARGS`` with the API's URL and key in the environment."""
    env = {
        **os.environ,
        "RECORDINGS_API_URL": url or f"{stack.api_url}/api",
        "RECORDINGS_FUNCTION_KEY": key or stack.function_key,
    }
    return run_recordings(args, env)


def run_recordings(
    args: tuple[str, ...], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m scripts.recordings ARGS`` in a child process with exactly ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.recordings", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wait_archived(stack: LocalStack, recording_id: str, timeout: float = 30.0) -> dict[str, Any]:
    url = f"{stack.api_url}/api/recordings/{quote(recording_id, safe='')}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = httpx.get(url, headers={"x-functions-key": stack.function_key}).json()
        archive = view["registry"].get("archive") or {}
        if archive.get("status") in {"archived", "lost", "failed"}:
            return archive
        time.sleep(0.2)
    raise AssertionError(f"{recording_id} was not archived in {timeout}s")


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324


def test_cli_records_a_call_and_downloads_a_verified_archive(
    stack: LocalStack, tmp_path: Path
) -> None:
    sim = EmulatorSimulation(stack.emulator_url)
    call = sim.create_call([{"rawId": raw, "toneHz": hz} for raw, hz in PARTICIPANTS])
    server_call_id = call["serverCallId"]
    order = [arg for raw, _ in PARTICIPANTS for arg in ("--order", raw)]

    start = ("start", server_call_id, "--content", "audio", "--channel", "unmixed",
             "--format", "wav", *order, "--idempotency-key", "cli-1")  # fmt: skip
    started = json.loads(ok(recordings(stack, *start, "--json")))
    recording_id = started["recordingId"]
    assert started["state"] == "active"
    replayed = ok(recordings(stack, *start))
    assert replayed.splitlines()[0] == (
        "already started with this --idempotency-key (the API replayed its first answer; "
        f"nothing new was started): {recording_id}"
    )
    assert ok(recordings(stack, *start, "-q")) == f"{recording_id}\n"
    second = recordings(stack, "start", server_call_id, "--content", "audio", "--format", "mp3")
    assert second.returncode == 1
    assert second.stderr == (
        "recordings: error: 409 Call already being recorded: This call (serverCallId) is "
        f"already being recorded by recording {recording_id!r}; ACS records a call once at a "
        "time: stop that recording before starting another. (field: serverCallId)\n"
    )
    sim.advance_clock(2)
    assert ok(recordings(stack, "pause", recording_id)).strip() == f"{recording_id}: inactive"
    sim.advance_clock(1)
    assert ok(recordings(stack, "resume", recording_id)).strip() == f"{recording_id}: active"
    sim.advance_clock(2)
    assert ok(recordings(stack, "stop", recording_id)).strip() == f"{recording_id}: stopped"
    assert ok(recordings(stack, "stop", recording_id)).strip() == f"{recording_id}: stopped"
    archive = wait_archived(stack, recording_id)
    assert archive["status"] == "archived"

    status = ok(recordings(stack, "status", recording_id))
    assert "state history" in status
    history = status.split("state history")[1].split("archive")[0]
    rows = [line.split() for line in history.strip().splitlines()[2:]]
    # ACS's callbacks land in the history too (source "callback"); the API's own steps:
    assert [row[0] for row in rows if row[-1] == "api"] == [
        "active", "inactive", "active", "stopped"
    ]  # fmt: skip
    assert {row[-1] for row in rows} <= {"api", "callback", "acs"}
    assert "archived" in status.split("\narchive\n")[1]

    listed = ok(recordings(stack, "list", "--server-call-id", server_call_id))
    shown = recording_id[: ID_WIDTH - 1] + "…"
    [row] = [line for line in listed.splitlines() if line.startswith(shown)]
    assert row.split()[:2] == [shown, "stopped"]  # the 180-character id, cut for the table
    assert "archived" in row.split()
    assert "--json shows them whole" in listed
    whole = json.loads(ok(recordings(stack, "list", "--server-call-id", server_call_id, "--json")))
    assert [item["recordingId"] for item in whole["items"]] == [recording_id]

    manifest = json.loads(ok(recordings(stack, "manifest", recording_id, "--json")))
    chunk = manifest["chunks"][0]
    assert "chunk-0000.wav" in ok(recordings(stack, "manifest", recording_id))

    out = tmp_path / "download"
    shown = ok(recordings(stack, "download", recording_id, "--out", str(out)))

    assert "✗" not in shown
    assert shown.count("✓") == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "chunk-0000.metadata.json", "chunk-0000.wav", "manifest.json"
    ]  # fmt: skip
    wav = (out / "chunk-0000.wav").read_bytes()
    assert len(wav) == chunk["contentBytes"]
    assert b64md5(wav) == chunk["contentMd5"]
    assert json.loads((out / "manifest.json").read_bytes()) == manifest

    only = tmp_path / "only"
    ok(recordings(stack, "download", recording_id, "--out", str(only), "--file", "chunk-0000.wav"))
    assert [p.name for p in only.iterdir()] == ["chunk-0000.wav"]


def test_list_all_follows_every_page_newest_first(stack: LocalStack) -> None:
    answer = json.loads(ok(recordings(stack, "list", "--all", "--limit", "1", "--json")))
    items = answer["items"]

    assert len(items) >= 2, "the demo's two recordings at least"
    assert answer["continuationToken"] is None
    created = [item["createdAt"] for item in items]
    assert created == sorted(created, reverse=True)
    assert len({item["recordingId"] for item in items}) == len(items)


def test_a_corrupted_file_is_refused_and_not_left_on_disk(
    stack: LocalStack, tmp_path: Path
) -> None:
    [item] = json.loads(
        ok(recordings(stack, "list", "--all", "--json", "--archive-status", "archived"))
    )["items"][-1:]
    recording_id = item["recordingId"]
    manifest = json.loads(ok(recordings(stack, "manifest", recording_id, "--json")))
    blob = manifest["chunks"][0]["contentBlob"]
    container = ContainerClient.from_connection_string(
        stack.function_env()["ARCHIVE_STORAGE_CONNECTION_STRING"], "recordings"
    )
    original = container.download_blob(blob).readall()
    container.upload_blob(blob, bytes(reversed(original)), overwrite=True)  # same size
    try:
        result = recordings(stack, "download", recording_id, "--out", str(tmp_path))
    finally:
        container.upload_blob(blob, original, overwrite=True)

    assert result.returncode == 1, result.stdout + result.stderr
    name = blob.rsplit("/", 1)[1]
    [row] = [line for line in result.stdout.splitlines() if line.startswith(name)]
    assert "✗ MD5 differs from the manifest" in row
    assert not (tmp_path / name).exists()
    assert not list(tmp_path.glob("*.part"))
    assert (tmp_path / "manifest.json").exists(), "the files that verified are kept"


def test_refusals_show_the_problem_in_one_line_and_exit_1(stack: LocalStack) -> None:
    unknown = recordings(stack, "manifest", "no-such-recording")
    wrong_key = recordings(stack, "list", key="not-the-key")

    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "recordings: error: 404 Recording not found: No recording with id 'no-such-recording' "
        "is known to this API. (field: recordingId)"
    ]
    assert wrong_key.returncode == 1
    assert "401" in wrong_key.stderr
    assert "Check the function key" in wrong_key.stderr
    assert "not-the-key" not in wrong_key.stderr + wrong_key.stdout
    assert stack.function_key not in wrong_key.stderr + wrong_key.stdout


def test_global_options_are_accepted_after_the_command(stack: LocalStack) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    after = recordings(stack, "list", "--api-url", f"{stack.api_url}/api", url=nowhere)
    before_wrong_after_right = recordings(
        stack, "--function-key", "wrong", "list", f"--function-key={stack.function_key}"
    )  # `=`: a random key may start with "-"
    ok(after)
    ok(before_wrong_after_right)
    assert recordings(stack, "list", "--api-url", nowhere).returncode == 3


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:7071", "'127.0.0.1:7071' is not an http:// or https:// URL with a host"),
        ("ftp://127.0.0.1/api", "'ftp://127.0.0.1/api' is not an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' is not a URL (Port out of range"),
    ],
)
def test_an_unusable_api_url_is_a_usage_error_in_one_sentence(
    stack: LocalStack, url: str, message: str
) -> None:
    result = recordings(stack, "list", url=url)
    assert result.returncode == 2
    error = result.stderr.splitlines()[-1]
    assert error.startswith(f"recordings: error: --api-url: {message}")
    assert ".." not in error


def test_an_unreachable_api_exits_3_saying_so(stack: LocalStack) -> None:
    result = recordings(stack, "list", url=f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 3
    assert "cannot reach the API" in result.stderr
    assert "connection refused" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--limit", "0"),
        ("list", "--state", "paused"),
        ("pause",),
        ("start",),
        ("start", "server-call", "--call-connection-id", "connection"),
        ("start", "server-call", "--affinity", "8:acs:alice"),
        ("start", "server-call", "--content", "audioVideo", "--format", "wav"),
        ("start", "server-call", "--content", "audio", "--channel", "unmixed", "--affinity", "a=9"),
        ("start", "server-call", "--content", "audio", "--order", "8:acs:alice"),
        ("--timeout", "0", "list"),
        ("list", "--timeout", "-1"),
        ("list", "--timeout", "soon"),
        ("frobnicate",),
        (),
    ],
)
def test_usage_errors_exit_2(stack: LocalStack, args: tuple[str, ...]) -> None:
    result = recordings(stack, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error:" in result.stderr
    assert "Errno" not in result.stderr


def test_a_rule_the_cli_knows_is_refused_before_any_request(stack: LocalStack) -> None:
    before = len(stack_recordings(stack))
    result = recordings(stack, "start", "server-call", "--content", "audioVideo", "--format", "wav")
    assert (
        result.stderr == "recordings: error: --content audioVideo is recorded --format mp4 only\n"
    )
    assert len(stack_recordings(stack)) == before


def stack_recordings(stack: LocalStack) -> list[dict[str, Any]]:
    return json.loads(ok(recordings(stack, "list", "--all", "--json")))["items"]


def test_every_command_has_help(stack: LocalStack) -> None:
    commands = ["start", "pause", "resume", "stop", "status", "list", "manifest", "download"]
    assert all(f"    {c}" in ok(recordings(stack, "--help")) for c in commands)
    for command in commands:
        assert f"usage: recordings {command}" in ok(recordings(stack, command, "--help"))
