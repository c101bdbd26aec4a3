"""The archiver's registry writes: MERGE only, ``archived`` is terminal, races leave one row."""

from __future__ import annotations

import json
import threading

from azure.data.tables import UpdateMode

from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema
from recording_pipeline.registry.archive_writes import ArchiveRegistry
from tests.functions.archive.conftest import ArchiveStack

RECORDING_ID = "eyJQbGF0+/recording=="


def manifest(archived_at: str = "2026-03-04T00:00:00+00:00") -> dict:
    return {
        "recordingId": RECORDING_ID,
        "eventId": "event-1",
        "callId": "call-1",
        "blobPrefix": "2026/03/04/call-1/x/",
        "chunks": [{"index": 0, "contentBlob": "b", "contentBytes": 3, "contentMd5": "AA=="}],
        "totalBytes": 3,
        "archivedAt": archived_at,
        "recordingStartTime": "2026-03-04T00:00:00+00:00",
        "participants": [{"participantId": "8:acs:a", "channels": [0]}],
    }


def test_archive_writes_merge_and_keep_the_apis_properties(stack: ArchiveStack) -> None:
    stack.table.upsert_entity(
        {
            "PartitionKey": encode_id(RECORDING_ID),
            "RowKey": "recording",
            "RecordingId": RECORDING_ID,
            "State": "stopped",
            "StateHistoryJson": "[]",
        },
        mode=UpdateMode.REPLACE,
    )
    registry = ArchiveRegistry(stack.table)
    assert registry.mark_archiving(RECORDING_ID, {"CallId": "call-1"}) is True
    registry.mark_archived(manifest(), "2026/03/04/call-1/x/manifest.json")

    entity = stack.recording_entity(RECORDING_ID)
    assert entity is not None
    assert entity["State"] == "stopped"
    assert entity["StateHistoryJson"] == "[]"
    assert entity["RecordingId"] == RECORDING_ID
    assert entity["ArchiveStatus"] == "archived"
    assert entity["ArchiveChunkCount"] == 1


def test_archived_is_terminal_for_late_or_failing_duplicates(stack: ArchiveStack) -> None:
    registry = ArchiveRegistry(stack.table)
    registry.mark_archived(manifest(), "m.json")

    assert registry.mark_archiving(RECORDING_ID, {"ArchiveEventId": "late"}) is False
    assert registry.mark_lost(RECORDING_ID, {}, "404", evidence=schema.LOST_BY_RETENTION) is False
    assert registry.mark_failed(RECORDING_ID, "boom") is False

    entity = stack.recording_entity(RECORDING_ID)
    assert entity is not None
    assert entity["ArchiveStatus"] == "archived"
    assert entity["ArchiveEventId"] == "event-1"
    assert entity["ArchiveError"] == ""


def test_racing_writers_create_one_row(stack: ArchiveStack) -> None:
    registry = ArchiveRegistry(stack.table)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        results.append(registry.mark_archiving(RECORDING_ID, {"CallId": "call-1"}))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == [True] * 4
    rows = [e for e in stack.entities() if e["RowKey"] == "recording"]
    assert len(rows) == 1 and rows[0]["ArchiveStatus"] == "archiving"


def test_participant_index_is_keyed_by_participant_and_recording(stack: ArchiveStack) -> None:
    registry = ArchiveRegistry(stack.table)
    for _ in range(2):
        assert registry.index_participants(manifest(), "m.json") == 1
    rows = [e for e in stack.entities() if e["PartitionKey"].startswith("participant-")]
    assert len(rows) == 1
    assert rows[0]["PartitionKey"] == "participant-8%3Aacs%3Aa"
    assert rows[0]["RowKey"] == encode_id(RECORDING_ID)
    assert rows[0]["Channel"] == 0


def test_chunk_list_in_the_row_shrinks_to_fit_a_table_property(stack: ArchiveStack) -> None:
    registry = ArchiveRegistry(stack.table)
    many = manifest()
    many["chunks"] = [
        {
            "index": i,
            "contentBlob": f"p/chunk-{i:04d}.wav",
            "contentBytes": 1,
            "contentMd5": "x" * 24,
        }
        for i in range(400)
    ]
    registry.mark_archived(many, "m.json")
    entity = stack.recording_entity(RECORDING_ID)
    assert entity is not None
    chunks = json.loads(entity["ArchiveChunksJson"])
    assert [c["index"] for c in chunks] == list(range(400))
    assert set(chunks[0]) == {"index", "contentBlob"}
    assert entity["ArchiveChunkCount"] == 400
