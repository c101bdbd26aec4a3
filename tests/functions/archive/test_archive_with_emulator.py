"""The archiver against the ACS emulator: real recordings, real events on the Azurite queue.

The emulator renders WAV/MP3/MP4 chunks, publishes ``RecordingFileStatusUpdated`` (base64 JSON)
to the events queue and serves the media at ``https://emulator.asm.skype.com/...`` URLs reached
through the media-host override. The archive must hold the emulator's files byte for byte.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueMessage

from local_runtime.processes import Azurite, ManagedProcess, python_module_argv
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import parse_event_message
from recording_pipeline.archive.layout import recording_prefix
from tests.functions.archive.conftest import (
    FAST_RETRY,
    ArchiveStack,
    make_archive_stack,
    md5_digest,
    register_recording,
)
from tests.support.emulator import RunningEmulator, start_emulator

TONES = [440, 700, 1000, 1300, 1700]


@dataclass
class Pair:
    emulator: RunningEmulator
    stack: ArchiveStack


@pytest.fixture
def start_pair(tmp_path: Path, azurite: Azurite) -> Iterator[Callable[..., Pair]]:
    """Factory: an emulator delivering to a fresh archive stack's events queue."""
    started: list[RunningEmulator] = []

    def start(*extra_args: str, delete_after_archive: bool = True) -> Pair:
        queue = f"events{uuid.uuid4().hex[:10]}"
        emulator = start_emulator(
            tmp_path, azurite=azurite, queue_name=queue, extra_args=list(extra_args)
        )
        started.append(emulator)
        stack = make_archive_stack(
            azurite,
            acs_endpoint=emulator.endpoint,
            media_override=emulator.media_override_base_url,
            resource_id=emulator.resource_id,
            access_key=emulator.access_key,
            events_queue=queue,
            delete_after_archive=delete_after_archive,
        )
        return Pair(emulator, stack)

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()


def record(
    pair: Pair,
    participants: int,
    steps: list[tuple[str, float]],
    **options: str,
) -> tuple[str, dict[str, Any]]:
    """Record a call scripted as ``[("advance", s) | ("pause", 0) | ("resume", 0)]``; its
    registry row is written as the API's start and a verified callback write it."""
    emulator = pair.emulator
    call = emulator.simulation.create_call(
        [{"rawId": f"8:acs:participant-{n}", "toneHz": TONES[n]} for n in range(participants)]
    )
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"], **options
        ).recording_id
        register_recording(pair.stack.table, call["callId"], call["serverCallId"], recording_id)
        for action, seconds in steps:
            if action == "advance":
                emulator.simulation.advance_clock(seconds)
            elif action == "pause":
                client.pause_recording(recording_id)
            else:
                client.resume_recording(recording_id)
        client.stop_recording(recording_id)
    return recording_id, emulator.simulation.wait_for_event(recording_id)


def emulator_files(emulator: RunningEmulator, event: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """(content, metadata) of each chunk, read from the emulator's data directory."""
    files = []
    for chunk in event["data"]["recordingStorageInfo"]["recordingChunks"]:
        folder = emulator.data_dir / "objects" / chunk["documentId"]
        (content,) = folder.glob("content.*")
        files.append((content.read_bytes(), (folder / "metadata.json").read_bytes()))
    return files


def receive_events(stack: ArchiveStack, count: int, timeout: float = 30) -> list[QueueMessage]:
    messages: list[QueueMessage] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        messages += list(stack.events_queue.receive_messages(visibility_timeout=120))
        time.sleep(0.05)
    assert len(messages) == count, f"expected {count} queued events, got {len(messages)}"
    return messages


def archive_message(stack: ArchiveStack, message: QueueMessage) -> ArchiveOutcome:
    outcome = handle_event_message(
        message.content,
        dequeue_count=message.dequeue_count,
        message_id=message.id,
        settings=stack.settings,
        retry=FAST_RETRY,
    )
    stack.events_queue.delete_message(message)
    return outcome


def assert_archive_matches(
    pair: Pair, event: dict[str, Any], files: list[tuple[bytes, bytes]], fmt: str
) -> dict[str, Any]:
    stack = pair.stack
    parsed = parse_event_message(json.dumps(event), resource_id=stack.settings.acs_resource_id)
    prefix = recording_prefix(parsed.call_id, parsed.recording_id, parsed.recording_start_time)
    for index, (content, metadata) in enumerate(files):
        blob = stack.container.get_blob_client(f"{prefix}chunk-{index:04d}.{fmt}")
        assert blob.download_blob().readall() == content, f"chunk {index} differs"
        md5 = blob.get_blob_properties().content_settings.content_md5
        assert bytes(md5) == md5_digest(content)
        assert stack.read_blob(f"{prefix}chunk-{index:04d}.metadata.json") == metadata
    manifest = json.loads(stack.read_blob(f"{prefix}manifest.json"))
    assert manifest["recordingId"] == parsed.recording_id
    assert manifest["eventId"] == event["id"]
    assert [c["contentBytes"] for c in manifest["chunks"]] == [len(c) for c, _ in files]
    assert [base64.b64decode(c["contentMd5"]) for c in manifest["chunks"]] == [
        md5_digest(c) for c, _ in files
    ]
    expected_channels: dict[str, set[int]] = {}
    for _, metadata in files:
        for participant in json.loads(metadata)["participants"]:
            channels = expected_channels.setdefault(participant["participantId"], set())
            if participant.get("channel") is not None:
                channels.add(participant["channel"])
    assert {p["participantId"]: set(p["channels"]) for p in manifest["participants"]} == (
        expected_channels
    )
    entity = stack.recording_entity(parsed.recording_id)
    assert entity is not None
    assert entity["ArchiveStatus"] == "archived"
    assert entity["ArchiveChunkCount"] == len(files)
    assert entity["ArchiveTotalBytes"] == sum(len(c) for c, _ in files)
    assert entity["ArchiveManifestBlob"] == f"{prefix}manifest.json"
    index_rows = [e for e in stack.entities() if e["PartitionKey"].startswith("participant-")]
    assert sorted(r["ParticipantId"] for r in index_rows) == sorted(expected_channels)
    return manifest


def object_statuses(emulator: RunningEmulator, recording_id: str) -> list[str]:
    objects = emulator.simulation.objects()["objects"]
    return [o["status"] for o in objects if o["recordingId"] == recording_id]


PAUSED_THREE_CHUNKS = [
    ("advance", 1.5),
    ("pause", 0),
    ("advance", 1.0),
    ("resume", 0),
    ("advance", 1.2),
]


@pytest.mark.parametrize(
    ("content", "channel", "fmt", "participants"),
    [
        ("audio", "mixed", "wav", 2),
        ("audio", "mixed", "mp3", 2),
        ("audioVideo", "mixed", "mp4", 2),
        ("audio", "unmixed", "wav", 5),
    ],
    ids=["mixed-wav", "mixed-mp3", "mixed-mp4", "unmixed-wav-5-channels"],
)
def test_recording_is_archived_byte_identical_and_deleted_from_acs(
    start_pair: Callable[..., Pair], content: str, channel: str, fmt: str, participants: int
) -> None:
    pair = start_pair("--max-chunk-duration", "1s")
    recording_id, event = record(
        pair,
        participants,
        PAUSED_THREE_CHUNKS,
        recording_content_type=content,
        recording_channel_type=channel,
        recording_format_type=fmt,
    )
    files = emulator_files(pair.emulator, event)
    assert len(files) >= 3

    (message,) = receive_events(pair.stack, 1)
    assert archive_message(pair.stack, message) is ArchiveOutcome.ARCHIVED

    manifest = assert_archive_matches(pair, event, files, fmt)
    assert manifest["formatType"] == fmt
    assert manifest["channelType"] == channel
    assert len(manifest["pauseResumeIntervals"]) == 1
    assert manifest["pauseResumeIntervals"][0]["durationMs"] == 1000
    if channel == "unmixed":
        assert sorted(c for p in manifest["participants"] for c in p["channels"]) == [0, 1, 2, 3, 4]
    assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}


def test_duplicate_events_processed_at_once_give_one_archive(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair("--max-chunk-duration", "1s")
    pair.emulator.simulation.set_faults([{"operation": "events", "kind": "duplicate", "times": 1}])
    recording_id, event = record(
        pair,
        2,
        [("advance", 3.0)],
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="wav",
    )
    files = emulator_files(pair.emulator, event)
    messages = receive_events(pair.stack, 2)
    outcomes: list[ArchiveOutcome] = []
    errors: list[BaseException] = []

    def run(message: QueueMessage) -> None:
        try:
            outcomes.append(archive_message(pair.stack, message))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(outcomes) == sorted([ArchiveOutcome.ARCHIVED, ArchiveOutcome.ALREADY_ARCHIVED])
    assert_archive_matches(pair, event, files, "wav")
    assert len([e for e in pair.stack.entities() if e["RowKey"] == "recording"]) == 1
    assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}


def test_media_faults_from_the_emulator_are_survived(start_pair: Callable[..., Pair]) -> None:
    pair = start_pair("--max-chunk-duration", "4s")
    recording_id, event = record(
        pair,
        5,
        [("advance", 9.0)],
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
    )
    files = emulator_files(pair.emulator, event)
    assert (
        max(len(content) for content, _ in files) > 2 * pair.stack.settings.archive_block_size_bytes
    )
    pair.emulator.simulation.set_faults(
        [
            {"operation": "download_recording", "kind": "drop", "afterBytes": 100_000, "times": 3},
            {"operation": "download_recording", "kind": "error", "status": 503, "times": 3},
            {"operation": "download_recording", "kind": "throttle", "retryAfter": 1, "times": 2},
            {"operation": "delete_recording", "kind": "error", "status": 500, "times": 1},
        ],
        seed=5,
    )
    (message,) = receive_events(pair.stack, 1)

    assert archive_message(pair.stack, message) is ArchiveOutcome.ARCHIVED

    assert_archive_matches(pair, event, files, "wav")
    fired = [
        (rule["operation"], rule["kind"], rule["fired"])
        for rule in pair.emulator.simulation.faults()["rules"]
    ]
    assert fired == [
        ("download_recording", "drop", 3),
        ("download_recording", "error", 3),
        ("download_recording", "throttle", 2),
        ("delete_recording", "error", 1),
    ]
    assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}


def test_expired_recording_is_refused_and_left_to_the_retention_rule(
    start_pair: Callable[..., Pair],
) -> None:
    """Metadata ACS answers 404 for proves nothing about the recording an event names (a forger
    can name any document): the event is refused and ``lost`` left to the reconciler's rule."""
    pair = start_pair("--retention", "2s")
    recording_id, _ = record(
        pair,
        2,
        [("advance", 1.0)],
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="mp3",
    )
    pair.emulator.simulation.advance_clock(5)
    assert set(object_statuses(pair.emulator, recording_id)) == {"expired"}
    (message,) = receive_events(pair.stack, 1)

    assert archive_message(pair.stack, message) is ArchiveOutcome.REJECTED

    (envelope,) = pair.stack.poison_envelopes()
    assert "ACS answers 404 for its metadata, so it cannot be checked" in envelope["reason"]
    entity = pair.stack.recording_entity(recording_id)
    assert entity is not None and "ArchiveStatus" not in entity
    assert pair.stack.blob_names() == []


def test_worker_archives_what_the_emulator_publishes(
    start_pair: Callable[..., Pair], tmp_path: Path
) -> None:
    pair = start_pair("--max-chunk-duration", "2s")
    worker = ManagedProcess(
        name="archive-worker",
        argv=python_module_argv("scripts.archive_worker", "--max-polling-interval", "0.2"),
        env=pair.stack.env,
        ready=lambda: (
            (tmp_path / "worker.log").exists()
            and "polling" in (tmp_path / "worker.log").read_text()
        ),
        log_path=tmp_path / "worker.log",
    )
    worker.start()
    try:
        recording_id, event = record(
            pair,
            3,
            [("advance", 2.5), ("pause", 0), ("advance", 1.0), ("resume", 0), ("advance", 1.0)],
            recording_content_type="audioVideo",
            recording_channel_type="mixed",
            recording_format_type="mp4",
        )
        files = emulator_files(pair.emulator, event)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if set(object_statuses(pair.emulator, recording_id)) == {"deleted"}:
                break
            time.sleep(0.2)
    finally:
        worker.stop()
    assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}, worker.log_tail()
    assert_archive_matches(pair, event, files, "mp4")


def test_worker_killed_mid_copy_resumes_and_the_md5_matches(
    start_pair: Callable[..., Pair], tmp_path: Path
) -> None:
    pair = start_pair("--max-chunk-duration", "60s")
    recording_id, event = record(
        pair,
        5,
        [("advance", 12.0)],
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
    )
    files = emulator_files(pair.emulator, event)
    ((content, _),) = files
    block = pair.stack.settings.archive_block_size_bytes
    assert len(content) > 6 * block
    # Slow downloads so the worker can be killed with some blocks staged and others not.
    pair.emulator.simulation.set_faults(
        [{"operation": "download_recording", "kind": "slow", "bytesPerSecond": 600_000}]
    )
    parsed = parse_event_message(json.dumps(event), resource_id=pair.stack.settings.acs_resource_id)
    prefix = recording_prefix(parsed.call_id, parsed.recording_id, parsed.recording_start_time)
    content_blob = pair.stack.container.get_blob_client(f"{prefix}chunk-0000.wav")

    def staged_blocks() -> int:
        try:
            return len(content_blob.get_block_list("uncommitted")[1])
        except ResourceNotFoundError:
            return 0

    def start_worker(number: int) -> ManagedProcess:
        log = tmp_path / f"worker-{number}.log"
        return ManagedProcess(
            name="archive-worker",
            argv=python_module_argv(
                "scripts.archive_worker", "--lease-seconds", "3", "--max-polling-interval", "0.2"
            ),
            env=pair.stack.env,
            ready=lambda: log.exists() and "polling" in log.read_text(),
            log_path=log,
        ).start()

    first = start_worker(1)
    try:
        deadline = time.monotonic() + 60
        while staged_blocks() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()
    finally:
        first.stop()
    staged = staged_blocks()
    assert 3 <= staged < len(content) // block, "the kill did not land mid-copy"
    assert not content_blob.exists()
    pair.emulator.simulation.set_faults([])

    second = start_worker(2)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if set(object_statuses(pair.emulator, recording_id)) == {"deleted"}:
                break
            time.sleep(0.1)
    finally:
        second.stop()
    # A Put Block in flight at the kill may still land after ``staged`` was counted.
    resumed = re.search(r"resuming at byte (\d+) after (\d+) staged blocks", second.log_tail(400))
    assert resumed is not None, second.log_tail(400)
    assert int(resumed.group(2)) >= staged
    assert int(resumed.group(1)) == int(resumed.group(2)) * block
    assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}, second.log_tail()
    assert_archive_matches(pair, event, files, "wav")


def forge_other_locations(event_a: dict[str, Any], event_b: dict[str, Any]) -> dict[str, Any]:
    """A's event (subject, document ids) with B's chunk locations."""
    forged = json.loads(json.dumps(event_a))
    chunks_a = forged["data"]["recordingStorageInfo"]["recordingChunks"]
    chunks_b = event_b["data"]["recordingStorageInfo"]["recordingChunks"]
    for chunk_a, chunk_b in zip(chunks_a, chunks_b, strict=True):
        for key in ("contentLocation", "metadataLocation", "deleteLocation"):
            chunk_a[key] = chunk_b[key]
    return forged


def forge_other_subject(event_a: dict[str, Any], event_b: dict[str, Any]) -> dict[str, Any]:
    """B's event (documents, locations) under A's subject, as a new event."""
    forged = json.loads(json.dumps(event_b))
    forged["subject"] = event_a["subject"]
    forged["id"] = str(uuid.uuid4())
    return forged


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (forge_other_locations, "is not ACS's contentLocation of the chunk's documentId"),
        (forge_other_subject, "its metadata does not match the event: callId is"),
    ],
    ids=["b-locations-under-a", "b-documents-under-a-subject"],
)
def test_a_forged_event_misfiles_nothing_and_deletes_nothing(
    start_pair: Callable[..., Pair], forge: Callable[..., dict[str, Any]], reason: str
) -> None:
    """An event naming recording A but pointing at recording B's documents is rejected before
    anything is committed or deleted; both real events then archive their own recordings."""
    pair = start_pair()
    options = {
        "recording_content_type": "audio",
        "recording_channel_type": "mixed",
        "recording_format_type": "wav",
    }
    recording_a, event_a = record(pair, 2, [("advance", 2.0)], **options)
    recording_b, event_b = record(pair, 2, [("advance", 3.0)], **options)
    forged = forge(event_a, event_b)

    outcome = handle_event_message(
        json.dumps(forged), message_id="forged-1", settings=pair.stack.settings, retry=FAST_RETRY
    )

    assert outcome is ArchiveOutcome.REJECTED
    (envelope,) = pair.stack.poison_envelopes()
    assert reason in envelope["reason"]
    assert pair.stack.blob_names() == []
    for recording_id in (recording_a, recording_b):
        entity = pair.stack.recording_entity(recording_id)
        assert entity is not None and "ArchiveStatus" not in entity
    assert set(object_statuses(pair.emulator, recording_b)) == {"stored"}
    for real, recording_id in ((event_a, recording_a), (event_b, recording_b)):
        assert (
            handle_event_message(json.dumps(real), settings=pair.stack.settings, retry=FAST_RETRY)
            is ArchiveOutcome.ARCHIVED
        )
        entity = pair.stack.recording_entity(recording_id)
        assert entity is not None and entity["ArchiveStatus"] == "archived"
        assert set(object_statuses(pair.emulator, recording_id)) == {"deleted"}
