"""The operator CLIs: replaying poison messages and answering participant data requests."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from local_runtime.media_server import MediaObject, SyntheticMediaServer
from local_runtime.processes import REPO_ROOT
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.layout import recording_prefix
from recording_pipeline.archive.poison import MAX_ENVELOPE_CHARS
from recording_pipeline.ids import encode_id
from recording_pipeline.operations import participants
from recording_pipeline.operations.replay_poison import MOVED_BY_HOST
from scripts import export_participant, replay_poison
from tests.functions.archive.conftest import (
    FAST_RETRY,
    ArchiveStack,
    SyntheticRecording,
    md5_digest,
    publish_recording,
)


@pytest.fixture
def stack_env(stack: ArchiveStack, monkeypatch: pytest.MonkeyPatch) -> ArchiveStack:
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    return stack


@pytest.mark.parametrize("module", ["replay_poison", "export_participant", "archive_worker"])
def test_cli_help(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"scripts.{module}", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: python -m scripts.{module}" in result.stdout


def archive(stack: ArchiveStack, recording: SyntheticRecording) -> None:
    stack.register(recording.event())
    outcome = handle_event_message(
        recording.message(),
        message_id=recording.event_id,
        settings=stack.settings,
        retry=FAST_RETRY,
    )
    assert outcome is ArchiveOutcome.ARCHIVED


def test_replay_puts_rejected_and_host_moved_messages_back(
    stack_env: ArchiveStack, media_server: SyntheticMediaServer, capsys: pytest.CaptureFixture
) -> None:
    stack = stack_env
    recording = publish_recording(media_server, [1000])
    # A rejection caused by a configuration mistake: the topic is not the configured resource.
    foreign = recording.message(topic=stack.settings.acs_resource_id + "-typo")
    assert handle_event_message(foreign, message_id="bad-1", settings=stack.settings) is (
        ArchiveOutcome.REJECTED
    )
    stack.poison_queue.send_message("raw-message-moved-by-the-host")

    assert replay_poison.main(["--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert "is not the configured ACS resource" in listed
    assert MOVED_BY_HOST in listed
    assert len(stack.poison_queue.peek_messages(max_messages=32)) == 2

    assert replay_poison.main(["--reason-contains", "configured ACS resource"]) == 0
    replayed = [m.content for m in stack.events_queue.peek_messages(max_messages=32)]
    assert replayed == [foreign]
    remaining = [m.content for m in stack.poison_queue.peek_messages(max_messages=32)]
    assert remaining == ["raw-message-moved-by-the-host"]

    assert replay_poison.main([]) == 0
    replayed = [m.content for m in stack.events_queue.peek_messages(max_messages=32)]
    assert replayed == [foreign, "raw-message-moved-by-the-host"]
    assert stack.poison_queue.peek_messages(max_messages=32) == []


def test_a_truncated_envelope_is_never_replayed(stack_env: ArchiveStack) -> None:
    stack = stack_env
    huge = "x" * (MAX_ENVELOPE_CHARS * 2)
    assert handle_event_message(huge, message_id="huge-1", settings=stack.settings) is (
        ArchiveOutcome.REJECTED
    )
    [poisoned] = stack.poison_queue.peek_messages(max_messages=32)
    assert json.loads(poisoned.content)["bodyTruncated"] is True

    assert replay_poison.main([]) == 0

    assert stack.events_queue.peek_messages(max_messages=32) == []
    assert [m.content for m in stack.poison_queue.peek_messages(max_messages=32)] == [
        poisoned.content
    ]


def test_export_lists_and_streams_a_participants_recordings(
    stack_env: ArchiveStack,
    media_server: SyntheticMediaServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    stack = stack_env
    first = publish_recording(media_server, [300_000, 2000], participants=3, seed=1)
    second = publish_recording(media_server, [5000], participants=2, seed=2)
    others_only = publish_recording(media_server, [100], participant_ids=["4:+15550100"], seed=3)
    for recording in (first, second, others_only):
        archive(stack, recording)

    assert export_participant.main(["list", "--participant-id", "8:acs:common-participant"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(row["RecordingId"] for row in listed) == sorted(
        [first.recording_id, second.recording_id]
    )

    out = tmp_path / "export"
    assert (
        export_participant.main(
            ["export", "--participant-id", "8:acs:common-participant", "--out", str(out)]
        )
        == 0
    )
    summary = json.loads((out / "export.json").read_text())
    assert {r["recordingId"] for r in summary["recordings"]} == {
        first.recording_id,
        second.recording_id,
    }
    folder = out / encode_id(first.recording_id)
    assert (folder / "chunk-0000.wav").read_bytes() == first.chunks[0].content
    assert (folder / "chunk-0001.wav").read_bytes() == first.chunks[1].content
    assert (folder / "chunk-0001.metadata.json").read_bytes() == first.chunks[1].metadata_bytes
    manifest = json.loads((folder / "manifest.json").read_text())
    assert base64.b64decode(manifest["chunks"][0]["contentMd5"]) == md5_digest(
        first.chunks[0].content
    )
    assert [r["channels"] for r in summary["recordings"]] == [[0], [0]]


def test_erase_needs_confirmation_then_removes_recordings_and_index(
    stack_env: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    stack = stack_env
    shared = publish_recording(media_server, [2000, 1000], participants=2, seed=4)
    unrelated = publish_recording(media_server, [1000], participant_ids=["4:+15550199"], seed=5)
    archive(stack, shared)
    archive(stack, unrelated)
    blobs_before = stack.blob_names()

    with pytest.raises(SystemExit):
        export_participant.main(["erase", "--participant-id", "8:acs:common-participant"])
    assert stack.blob_names() == blobs_before

    assert (
        export_participant.main(["erase", "--participant-id", "8:acs:common-participant", "--yes"])
        == 0
    )

    shared_prefix = recording_prefix(shared.call_id, shared.recording_id, shared.start_time)
    unrelated_prefix = recording_prefix(
        unrelated.call_id, unrelated.recording_id, unrelated.start_time
    )
    assert not any(name.startswith(shared_prefix) for name in stack.blob_names())
    assert [n for n in stack.blob_names() if n.startswith(unrelated_prefix)] == [
        n for n in blobs_before if n.startswith(unrelated_prefix)
    ]
    index = [e for e in stack.entities() if e["PartitionKey"].startswith("participant-")]
    assert [e["ParticipantId"] for e in index] == ["4:+15550199"]
    entity = stack.recording_entity(shared.recording_id)
    assert entity is not None and entity["ArchiveStatus"] == "erased"
    assert participants.participant_recordings(stack.table, "8:acs:common-participant") == []


def test_a_redelivered_event_does_not_bring_back_an_erased_recording(
    stack_env: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    stack = stack_env
    recording = publish_recording(media_server, [1500], participants=1, seed=6)
    archive(stack, recording)
    index = [e for e in stack.entities() if e["PartitionKey"].startswith("participant-")]
    assert index, "the archive indexed no participant"
    assert (
        export_participant.main(["erase", "--participant-id", index[0]["ParticipantId"], "--yes"])
        == 0
    )
    prefix = recording_prefix(recording.call_id, recording.recording_id, recording.start_time)
    assert not any(name.startswith(prefix) for name in stack.blob_names())

    # The source still holds the media (as it would with deleteFromAcsAfterArchive=false).
    for chunk in recording.chunks:
        media_server.add(chunk.content_path, MediaObject.literal(chunk.content))
        media_server.add(chunk.metadata_path, MediaObject.literal(chunk.metadata_bytes))
    media_server.requests.clear()
    outcome = handle_event_message(
        recording.message(), message_id="replayed", settings=stack.settings, retry=FAST_RETRY
    )

    assert outcome is ArchiveOutcome.IGNORED
    assert media_server.requests == []  # the registry answered: ACS was not asked
    assert not any(name.startswith(prefix) for name in stack.blob_names())
    entity = stack.recording_entity(recording.recording_id)
    assert entity is not None and entity["ArchiveStatus"] == "erased"
