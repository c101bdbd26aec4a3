"""The registry against a real Azurite table: merges, ETag races, idempotency, archive fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables import TableClient, UpdateMode

from local_runtime.processes import Azurite, free_port
from recording_pipeline.ids import encode_id
from recording_pipeline.recording_options import RecordingOptions
from recording_pipeline.registry.states import (
    RecordingMissingError,
    StateChange,
    start_change,
    state_change,
)
from recording_pipeline.registry.table import Registry, RegistryUnavailableError
from tests.functions.stack import unique_table_name

OPTIONS = RecordingOptions(
    server_call_id="server+call/1=",
    call_connection_id=None,
    content="audio",
    channel="unmixed",
    format="wav",
    pause_on_start=False,
    participant_ordering=("8:acs:a", "8:acs:b"),
    channel_affinity=(),
    callback_url=None,
)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def record_started(registry: Registry, recording_id: str) -> None:
    """What the API's writer does for a start (one change, written now)."""
    change = start_change(recording_id, OPTIONS, state="active", at=NOW)
    registry.apply_changes(recording_id, [change], creates=True)


def record_state(
    registry: Registry, recording_id: str, change: StateChange, **options: Any
) -> None:
    """What the API's writer does for a state change or a callback (written now)."""
    registry.apply_changes(recording_id, [state_change(recording_id, change, **options)])


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    client = TableClient.from_connection_string(azurite.connection_string, unique_table_name())
    client.create_table()
    try:
        yield client
    finally:
        client.delete_table()


@pytest.fixture
def registry(table: TableClient) -> Registry:
    return Registry(table)


def test_start_writes_the_documented_entity(registry: Registry, table: TableClient) -> None:
    record_started(registry, "rec+1/=")

    entity = table.get_entity(encode_id("rec+1/="), "recording")
    assert entity["RecordingId"] == "rec+1/="
    assert entity["ServerCallId"] == "server+call/1="
    assert (entity["ContentType"], entity["ChannelType"], entity["FormatType"]) == (
        "audio",
        "unmixed",
        "wav",
    )
    assert json.loads(entity["OptionsJson"])["audioChannelParticipantOrdering"] == [
        "8:acs:a",
        "8:acs:b",
    ]
    assert entity["State"] == "active"
    assert json.loads(entity["StateHistoryJson"]) == [
        {"state": "active", "at": "2026-01-02T03:04:05.678000Z", "source": "api"}
    ]
    assert entity["CreatedAt"].endswith("Z")
    assert entity["UpdatedAt"].endswith("Z")


def test_repeated_start_write_is_idempotent(registry: Registry) -> None:
    record_started(registry, "rec-2")
    record_started(registry, "rec-2")
    entry = registry.get("rec-2")
    assert entry is not None
    assert len(entry.history) == 1


def test_callback_before_start_is_merged_with_the_start(registry: Registry) -> None:
    record_state(
        registry,
        "rec-3",
        StateChange("active", "2026-01-02T03:04:05.000Z", "callback", "event-1"),
        create_if_missing=True,
        call_ids={"ServerCallId": "server+call/1="},
    )
    record_started(registry, "rec-3")
    entry = registry.get("rec-3")
    assert entry is not None
    assert [(e["source"], e.get("eventId")) for e in entry.history] == [
        ("callback", "event-1"),
        ("api", None),
    ]
    assert entry.options is not None
    assert entry.options["channel"] == "unmixed"


def test_concurrent_state_changes_all_land_in_the_history(registry: Registry) -> None:
    record_started(registry, "rec-4")

    def change(index: int) -> None:
        record_state(
            registry, "rec-4", StateChange("inactive", f"t{index}", "callback", f"event-{index}")
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(change, range(16)))
    entry = registry.get("rec-4")
    assert entry is not None
    assert sorted(e["eventId"] for e in entry.history if "eventId" in e) == sorted(
        f"event-{i}" for i in range(16)
    )


def test_api_writes_never_erase_the_archivers_fields(
    registry: Registry, table: TableClient
) -> None:
    record_started(registry, "rec-5")
    table.update_entity(
        {
            "PartitionKey": encode_id("rec-5"),
            "RowKey": "recording",
            "ArchiveStatus": "archived",
            "ArchiveBlobPrefix": "2026/01/02/call/rec-5/",
            "ArchiveChunkCount": 2,
            "ArchivedAt": NOW,
            "ArchiveChunksJson": json.dumps([{"index": 0}, {"index": 1}]),
        },
        mode=UpdateMode.MERGE,
    )
    record_state(registry, "rec-5", StateChange("stopped", "t", "api"))
    entry = registry.get("rec-5")
    assert entry is not None
    assert entry.state == "stopped"
    assert entry.archive == {
        "status": "archived",
        "callId": None,
        "blobPrefix": "2026/01/02/call/rec-5/",
        "manifestBlob": None,
        "chunkCount": 2,
        "totalBytes": None,
        "archivedAt": "2026-01-02T03:04:05.678000Z",
        "error": None,
        "overdueAt": None,
        "chunks": [{"index": 0}, {"index": 1}],
    }


def test_late_callback_does_not_revive_a_stopped_recording(registry: Registry) -> None:
    record_started(registry, "rec-6")
    record_state(registry, "rec-6", StateChange("stopped", "t1", "api"))
    record_state(registry, "rec-6", StateChange("inactive", "t0", "callback", "late"))
    entry = registry.get("rec-6")
    assert entry is not None
    assert entry.state == "stopped"
    # The history is a timeline: the late callback (t0) sits before the stop (t1).
    assert [(e["state"], e.get("eventId")) for e in entry.history[1:]] == [
        ("inactive", "late"),
        ("stopped", None),
    ]


def test_late_callback_does_not_override_the_state_the_api_set(registry: Registry) -> None:
    record_started(registry, "rec-9")
    record_state(registry, "rec-9", StateChange("inactive", "t1", "api"))
    record_state(registry, "rec-9", StateChange("active", "t0", "callback", "start-callback"))
    entry = registry.get("rec-9")
    assert entry is not None
    assert entry.state == "inactive"
    # In time order: the start, its late callback (t0), then the pause (t1).
    assert [e["state"] for e in entry.history] == ["active", "active", "inactive"]


def test_start_failed_callback_sets_failed_and_a_late_start_keeps_it(registry: Registry) -> None:
    record_state(
        registry,
        "rec-10",
        StateChange("failed", "t0", "callback", "failed-1"),
        failure="500/1: no media",
        create_if_missing=True,
    )
    record_started(registry, "rec-10")
    entry = registry.get("rec-10")
    assert entry is not None
    assert (entry.state, entry.failure) == ("failed", "500/1: no media")
    assert entry.options is not None


def test_peek_answers_this_process_copy_and_get_reads_the_table(
    registry: Registry, table: TableClient
) -> None:
    record_started(registry, "rec-11")
    table.update_entity(
        {"PartitionKey": encode_id("rec-11"), "RowKey": "recording", "State": "inactive"},
        mode=UpdateMode.MERGE,
    )
    cached, fresh = registry.peek("rec-11"), registry.get("rec-11")
    assert cached is not None
    assert fresh is not None
    assert (cached.state, fresh.state) == ("active", "inactive")


def test_write_from_a_stale_copy_rereads_instead_of_losing_an_update(
    registry: Registry, table: TableClient
) -> None:
    """Another instance writes between this one's copy and its next write (a 412, a re-read)."""
    record_started(registry, "rec-12")
    other_instance = Registry(table)
    record_state(other_instance, "rec-12", StateChange("inactive", "t1", "callback", "other"))
    record_state(registry, "rec-12", StateChange("stopped", "t2", "api"))  # from its old copy
    entry = registry.get("rec-12")
    assert entry is not None
    assert entry.state == "stopped"
    assert [e.get("eventId") for e in entry.history] == [None, "other", None]


def test_api_state_change_of_an_unknown_recording_is_refused(registry: Registry) -> None:
    with pytest.raises(RecordingMissingError):
        record_state(registry, "never-started", StateChange("inactive", "t", "api"))
    assert registry.get("never-started") is None


def test_idempotency_claim_returns_the_first_use(registry: Registry) -> None:
    first = registry.claim_idempotency("key with/odd+chars", "hash-1", at=NOW)
    assert first.is_new
    assert first.recording_id is None
    registry.complete_idempotency("key with/odd+chars", "rec-7")
    again = registry.claim_idempotency("key with/odd+chars", "hash-2", at=datetime.now(UTC))
    assert not again.is_new
    assert (again.request_hash, again.recording_id, again.created_at) == ("hash-1", "rec-7", NOW)


def test_unreachable_table_is_registry_unavailable() -> None:
    port = free_port()
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=AAAA;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    registry = Registry(TableClient.from_connection_string(connection, "recordings", retry_total=0))
    with pytest.raises(RegistryUnavailableError):
        registry.get("rec-8")


def _archive(table: TableClient, recording_id: str, status: str) -> None:
    table.update_entity(
        {"PartitionKey": encode_id(recording_id), "RowKey": "recording", "ArchiveStatus": status},
        mode=UpdateMode.MERGE,
    )


def test_a_recording_ended_by_hang_up_reads_as_stopped_once_archived(
    registry: Registry, table: TableClient
) -> None:
    """A hang-up never reaches the API; the archive proves the recording is over."""
    record_started(registry, "ended-by-hangup")
    record_started(registry, "still-running")
    record_started(registry, "failed-start")
    record_state(registry, "failed-start", StateChange("failed", "t", "callback"))
    _archive(table, "ended-by-hangup", "archived")
    _archive(table, "failed-start", "lost")

    entry = registry.get("ended-by-hangup")
    assert entry is not None and entry.state == "stopped"
    assert table.get_entity(encode_id("ended-by-hangup"), "recording")["State"] == "active"

    def ids(state: str) -> set[str]:
        page = registry.list_recordings(limit=100, state=state)
        return {item["recordingId"] for item in page.items}

    assert ids("stopped") == {"ended-by-hangup"}
    assert ids("active") == {"still-running"}
    assert ids("failed") == {"failed-start"}
