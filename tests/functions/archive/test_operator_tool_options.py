"""The operator tools' shared options against real Azurite: ``--connection-string`` alone points
them at the storage, and ``replay_poison --dry-run`` shows exactly what the same command without
it replays (the same filters, the same messages)."""

from __future__ import annotations

import json
import os

import pytest

from recordings_cli.closed_stdout import EXIT_READER_GONE
from scripts import replay_poison
from tests.functions.archive.conftest import ArchiveStack
from tests.unit.test_operator_scripts import run_with_reader_gone

CONNECTION = "ARCHIVE_STORAGE_CONNECTION_STRING"


def _envelope(reason: str, body: str, *, truncated: bool = False) -> str:
    envelope = {"reason": reason, "messageId": "m", "receivedAt": "2026-12-03T10:00:00Z"}
    return json.dumps({**envelope, "body": body, **({"bodyTruncated": True} if truncated else {})})


@pytest.fixture
def poisoned(stack: ArchiveStack, monkeypatch: pytest.MonkeyPatch) -> ArchiveStack:
    """Five poisoned messages of three kinds; the storage is named only by the option."""
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(CONNECTION)
    for message in (
        _envelope("topic '/x' is not the configured ACS resource", '{"n": 1}'),
        "raw-message-moved-by-the-host-1",
        _envelope("topic '/y' is not the configured ACS resource", '{"n": 2}', truncated=True),
        _envelope("topic '/z' is not the configured ACS resource", '{"n": 3}'),
        "raw-message-moved-by-the-host-2",
    ):
        stack.poison_queue.send_message(message)
    return stack


def _ids(output: str, prefix: str) -> list[str]:
    return [
        line.removeprefix(prefix).split("\t")[0]
        for line in output.splitlines()
        if line.startswith(prefix)
    ]


@pytest.mark.parametrize(
    "filters",
    [
        [],
        ["--reason-contains", "configured ACS resource"],
        ["--reason-contains", "nothing has this reason"],
        ["--max", "1"],
        ["--reason-contains", "maxDequeueCount", "--max", "1"],
        ["--max", "4"],
    ],
)
def test_a_dry_run_shows_what_the_same_replay_then_does(
    poisoned: ArchiveStack, filters: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    option = ["--connection-string", poisoned.env[CONNECTION]]
    before = [(m.id, m.content) for m in poisoned.poison_queue.peek_messages(max_messages=32)]

    assert replay_poison.main([*filters, *option, "--dry-run"]) == 0
    planned = _ids(capsys.readouterr().out, "would replay ")
    after_dry_run = [(m.id, m.content) for m in poisoned.poison_queue.peek_messages(32)]
    assert after_dry_run == before
    assert poisoned.events_queue.peek_messages(max_messages=32) == []

    assert replay_poison.main([*filters, *option]) == 0
    replayed = _ids(capsys.readouterr().out, "replayed ")

    assert sorted(planned) == sorted(replayed)
    moved = [m.content for m in poisoned.events_queue.peek_messages(max_messages=32)]
    assert len(moved) == len(replayed)


def test_a_dry_run_into_a_closed_pipe_ends_quietly(poisoned: ArchiveStack) -> None:
    code, stderr = run_with_reader_gone(
        ["scripts.replay_poison", "--dry-run", "--connection-string", poisoned.env[CONNECTION]],
        env=dict(os.environ),
    )

    assert stderr == ""
    assert code == EXIT_READER_GONE
