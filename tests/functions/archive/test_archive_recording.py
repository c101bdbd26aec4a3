"""handle_event_message end to end: ranged media server -> Azurite blobs, registry, index."""

from __future__ import annotations

import base64
import json
import logging
import threading

import pytest

from infra.storage import CONTENT_KIND_TAG
from local_runtime.media_server import Fault, SyntheticMediaServer
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import decode_message_body
from recording_pipeline.archive.layout import recording_prefix
from recording_pipeline.ids import encode_id
from tests.functions.archive.conftest import (
    BLOCK_SIZE,
    FAST_RETRY,
    ArchiveStack,
    SyntheticRecording,
    md5_digest,
    publish_recording,
)


def archive(stack: ArchiveStack, message: str, message_id: str = "m-1") -> ArchiveOutcome:
    """Archive ``message`` of a recording started through the API (its registry row exists)."""
    stack.register(decode_message_body(message))
    return handle_event_message(
        message, dequeue_count=1, message_id=message_id, settings=stack.settings, retry=FAST_RETRY
    )


def expected_prefix(recording: SyntheticRecording) -> str:
    return recording_prefix(recording.call_id, recording.recording_id, recording.start_time)


def assert_archived(stack: ArchiveStack, recording: SyntheticRecording, fmt: str = "wav") -> dict:
    prefix = expected_prefix(recording)
    names = stack.blob_names()
    expected_names = sorted(
        [f"{prefix}chunk-{i:04d}.{fmt}" for i in range(len(recording.chunks))]
        + [f"{prefix}chunk-{i:04d}.metadata.json" for i in range(len(recording.chunks))]
        + [f"{prefix}manifest.json"]
    )
    assert names == expected_names
    for index, chunk in enumerate(recording.chunks):
        content_blob = stack.container.get_blob_client(f"{prefix}chunk-{index:04d}.{fmt}")
        assert content_blob.download_blob().readall() == chunk.content
        properties = content_blob.get_blob_properties()
        assert bytes(properties.content_settings.content_md5) == md5_digest(chunk.content)
        assert properties.metadata["recordingId"] == recording.recording_id
        assert properties.metadata["chunkIndex"] == str(index)
        assert properties.metadata["chunkStartTime"] == chunk.metadata["chunkStartTime"]
        tags = content_blob.get_blob_tags()
        assert tags["callId"] == recording.call_id
        assert tags["recordingId"] == recording.recording_id
        assert tags["format"] == fmt
        assert tags["durationMs"] == "1000"
        metadata_name = f"{prefix}chunk-{index:04d}.metadata.json"
        assert stack.read_blob(metadata_name) == chunk.metadata_bytes
    manifest = json.loads(stack.read_blob(f"{prefix}manifest.json"))
    assert [c["contentBytes"] for c in manifest["chunks"]] == [
        len(c.content) for c in recording.chunks
    ]
    assert [base64.b64decode(c["contentMd5"]) for c in manifest["chunks"]] == [
        md5_digest(c.content) for c in recording.chunks
    ]
    entity = stack.recording_entity(recording.recording_id)
    assert entity is not None
    assert entity["ArchiveStatus"] == "archived"
    assert entity["ArchiveManifestBlob"] == f"{prefix}manifest.json"
    assert entity["ArchiveChunkCount"] == len(recording.chunks)
    assert entity["ArchiveTotalBytes"] == sum(len(c.content) for c in recording.chunks)
    assert entity["ArchivedAt"] == manifest["archivedAt"]
    return manifest


def test_three_chunk_recording_is_archived_verified_indexed_and_deleted(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    sizes = [3 * BLOCK_SIZE + 17, BLOCK_SIZE, 1000]
    recording = publish_recording(media_server, sizes, participants=3)

    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED

    manifest = assert_archived(stack, recording)
    prefix = expected_prefix(recording)
    # The date folder comes from recordingStartTime in UTC and every id is one encoded segment.
    assert prefix == (
        f"2026/03/04/{encode_id(recording.call_id)}/{encode_id(recording.recording_id)}/"
    )
    assert "/" in recording.recording_id and prefix.count("/") == 5
    participants = {p["participantId"]: p["channels"] for p in manifest["participants"]}
    assert participants["8:acs:common-participant"] == [0]
    assert participants["8:acs:2-2-participant/x"] == [2]
    assert len(participants) == 1 + 2 * 3
    assert len(manifest["pauseResumeIntervals"]) == 3
    assert manifest["eventId"] == recording.event_id
    index_rows = [e for e in stack.entities() if e["PartitionKey"].startswith("participant-")]
    assert len(index_rows) == len(participants)
    common = [r for r in index_rows if r["ParticipantId"] == "8:acs:common-participant"]
    assert common[0]["RowKey"] == encode_id(recording.recording_id)
    assert common[0]["ManifestBlob"] == f"{prefix}manifest.json"
    assert sorted(media_server.deleted) == sorted(
        f"/v1/objects/{c.document_id}" for c in recording.chunks
    )
    # Every content request was a bounded Range of at most one block.
    for chunk in recording.chunks:
        for header in media_server.get_requests(chunk.content_path):
            first, last = header.removeprefix("bytes=").split("-")
            assert int(last) - int(first) + 1 <= BLOCK_SIZE


@pytest.mark.parametrize("fmt", ["wav", "mp3", "mp4"])
def test_every_format_gets_its_extension_and_mime_type(
    stack: ArchiveStack, media_server: SyntheticMediaServer, fmt: str
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE + 5], format_type=fmt)
    assert archive(stack, recording.message(base64_encoded=False)) is ArchiveOutcome.ARCHIVED
    assert_archived(stack, recording, fmt)
    blob = stack.container.get_blob_client(f"{expected_prefix(recording)}chunk-0000.{fmt}")
    mime = {"wav": "audio/wav", "mp3": "audio/mpeg", "mp4": "video/mp4"}[fmt]
    assert blob.get_blob_properties().content_settings.content_type == mime


def test_blobs_are_findable_by_index_tags(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [100, 200])
    archive(stack, recording.message())
    # The same tag the lifecycle rule tiers on (only media goes to colder tiers).
    name, value = CONTENT_KIND_TAG
    query = f"\"recordingId\" = '{recording.recording_id}' AND \"{name}\" = '{value}'"
    found = sorted(blob.name for blob in stack.container.find_blobs_by_tags(query))
    prefix = expected_prefix(recording)
    assert found == [f"{prefix}chunk-0000.wav", f"{prefix}chunk-0001.wav"]


def test_sequential_duplicate_is_acknowledged_without_a_second_archive(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE * 2])
    assert archive(stack, recording.message(), "m-1") is ArchiveOutcome.ARCHIVED
    manifest_before = stack.read_blob(f"{expected_prefix(recording)}manifest.json")
    entity_before = stack.recording_entity(recording.recording_id)
    gets_before = len(media_server.get_requests(recording.chunks[0].content_path))

    assert archive(stack, recording.message(), "m-2") is ArchiveOutcome.ALREADY_ARCHIVED

    assert stack.read_blob(f"{expected_prefix(recording)}manifest.json") == manifest_before
    assert len(media_server.get_requests(recording.chunks[0].content_path)) == gets_before
    entity_after = stack.recording_entity(recording.recording_id)
    assert entity_after is not None and entity_before is not None
    assert entity_after["ArchivedAt"] == entity_before["ArchivedAt"]
    assert len([e for e in stack.entities() if e["RowKey"] == "recording"]) == 1


def test_concurrent_duplicates_produce_exactly_one_archive(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE * 4 + 3, BLOCK_SIZE * 2])
    outcomes: list[ArchiveOutcome] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run(message_id: str) -> None:
        barrier.wait()
        try:
            outcomes.append(archive(stack, recording.message(), message_id))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"m-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(outcomes).count(ArchiveOutcome.ARCHIVED) == 1
    assert sorted(outcomes).count(ArchiveOutcome.ALREADY_ARCHIVED) == 2
    assert_archived(stack, recording)
    assert len([e for e in stack.entities() if e["RowKey"] == "recording"]) == 1


@pytest.mark.parametrize("drop_offsets", [[0], [1], [BLOCK_SIZE - 1, BLOCK_SIZE + 10], [900_000]])
def test_dropped_connections_resume_from_the_last_good_byte(
    stack: ArchiveStack, media_server: SyntheticMediaServer, drop_offsets: list[int]
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE * 4 + 100])
    path = recording.chunks[0].content_path
    for offset in drop_offsets:
        media_server.add_fault(path, Fault(drop_at=offset))

    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED

    assert_archived(stack, recording)
    starts = [int(h.removeprefix("bytes=").split("-")[0]) for h in media_server.get_requests(path)]
    for offset in drop_offsets:
        assert offset in starts, f"no request resumed at byte {offset}: {starts}"


def test_503_bursts_and_429_retry_after_are_retried(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE * 2])
    media_server.add_fault(recording.chunks[0].metadata_path, Fault(status=503, times=3))
    media_server.add_fault(recording.chunks[0].content_path, Fault(status=429, retry_after="1"))
    media_server.add_fault(recording.chunks[0].content_path, Fault(status=500, times=2))
    import time

    started = time.monotonic()
    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
    assert_archived(stack, recording)


def test_retries_exhausted_raise_for_redelivery_and_write_no_visible_blob(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [BLOCK_SIZE * 3])
    media_server.add_fault(recording.chunks[0].content_path, Fault(status=503, times=100))

    with pytest.raises(Exception, match="attempts without progress"):
        archive(stack, recording.message())

    prefix = expected_prefix(recording)
    assert f"{prefix}chunk-0000.wav" not in stack.blob_names()
    assert f"{prefix}manifest.json" not in stack.blob_names()
    entity = stack.recording_entity(recording.recording_id)
    assert entity is not None and entity["ArchiveStatus"] == "archiving"
    assert media_server.deleted == []

    media_server.faults.clear()
    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED
    assert_archived(stack, recording)


def test_expired_source_marks_the_recording_lost_with_an_error_log(
    stack: ArchiveStack, media_server: SyntheticMediaServer, caplog: pytest.LogCaptureFixture
) -> None:
    recording = publish_recording(media_server, [1000, 2000])
    del media_server.objects[recording.chunks[1].content_path]

    with caplog.at_level(logging.ERROR, logger="recording_pipeline.archive.archiver"):
        assert archive(stack, recording.message()) is ArchiveOutcome.LOST

    entity = stack.recording_entity(recording.recording_id)
    assert entity is not None
    assert entity["ArchiveStatus"] == "lost"
    assert "chunk 1 content (404" in entity["ArchiveError"]
    assert entity["ArchiveChunkCount"] == 1
    lost_logs = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("RECORDING_LOST" in r.getMessage() for r in lost_logs)
    prefix = expected_prefix(recording)
    # What ACS still had is kept; without every chunk there is no manifest and no deletion.
    assert stack.read_blob(f"{prefix}chunk-0000.wav") == recording.chunks[0].content
    assert f"{prefix}manifest.json" not in stack.blob_names()
    assert media_server.deleted == []


def test_delete_disabled_keeps_acs_copies(azurite, media_server: SyntheticMediaServer) -> None:
    from tests.functions.archive.conftest import make_archive_stack

    stack = make_archive_stack(
        azurite,
        acs_endpoint=media_server.base_url,
        media_override=media_server.base_url,
        delete_after_archive=False,
    )
    recording = publish_recording(media_server, [500])
    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED
    assert media_server.deleted == []


def test_already_deleted_acs_copy_is_fine(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recording = publish_recording(media_server, [500])
    assert archive(stack, recording.message()) is ArchiveOutcome.ARCHIVED
    assert media_server.objects.get(recording.chunks[0].content_path) is None
    # A duplicate after deletion: the manifest exists, the delete answers 404, all is well.
    assert archive(stack, recording.message(), "m-2") is ArchiveOutcome.ALREADY_ARCHIVED
    assert media_server.deleted.count(f"/v1/objects/{recording.chunks[0].document_id}") == 2
