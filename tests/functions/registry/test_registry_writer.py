"""The deferred registry writer against a real Azurite table: visible at once, ordered,
batched, retried through an outage, bounded, and loud when it gives up."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import TableClient

from local_runtime.processes import Azurite
from recording_pipeline.clock import iso
from recording_pipeline.ids import encode_id
from recording_pipeline.registry.states import StateChange, start_change, state_change
from recording_pipeline.registry.table import Registry, RegistryUnavailableError
from recording_pipeline.registry.writer import (
    REGISTRY_WRITE_FAILED_MARKER,
    DeferredRegistryWrites,
    written_within,
)
from tests.functions.registry.test_registry import OPTIONS
from tests.functions.stack import unique_table_name

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
WRITE_METHODS = {"POST", "PUT", "PATCH", "MERGE"}


class TableGate:
    """A raw-request hook that counts table writes and can hold them until opened."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.writes = 0

    def __call__(self, request: Any) -> None:
        if request.http_request.method in WRITE_METHODS:
            self.writes += 1
            assert self.open.wait(30), "the test never opened the gate"


@pytest.fixture
def table_name(azurite: Azurite) -> Iterator[str]:
    name = unique_table_name()
    admin = TableClient.from_connection_string(azurite.connection_string, name)
    admin.create_table()
    try:
        yield name
    finally:
        admin.delete_table()


@pytest.fixture
def gate() -> TableGate:
    return TableGate()


@pytest.fixture
def registry(azurite: Azurite, table_name: str, gate: TableGate) -> Registry:
    client = TableClient.from_connection_string(
        azurite.connection_string, table_name, raw_request_hook=gate
    )
    return Registry(client)


@pytest.fixture
def stored(azurite: Azurite, table_name: str) -> TableClient:
    """A second client on the same table: what the table holds, not what the writer shows."""
    return TableClient.from_connection_string(azurite.connection_string, table_name)


def writer(registry: Registry, **options: Any) -> DeferredRegistryWrites:
    return DeferredRegistryWrites(registry, **{"group_commit_seconds": 0.0, **options})


def api_change(recording_id: str, state: str, seconds: int) -> Any:
    change = StateChange(state, iso(T0 + timedelta(seconds=seconds)), "api")
    return state_change(recording_id, change, create_if_missing=True)


def stored_entity(stored: TableClient, recording_id: str) -> dict[str, Any] | None:
    found = list(
        stored.query_entities("PartitionKey eq @pk", parameters={"pk": encode_id(recording_id)})
    )
    return found[0] if found else None


def test_changes_are_visible_before_they_are_written(
    registry: Registry, gate: TableGate, stored: TableClient
) -> None:
    writes = writer(registry)
    gate.open.clear()
    writes.submit("rec-1", start_change("rec-1", OPTIONS, state="active", at=T0), creates=True)
    writes.submit("rec-1", api_change("rec-1", "inactive", 1))

    shown = writes.get("rec-1")
    assert shown is not None
    assert shown.state == "inactive"
    assert shown.options is not None and shown.options["format"] == "wav"
    assert stored_entity(stored, "rec-1") is None  # nothing has reached the table yet

    gate.open.set()
    assert writes.flush(10)
    entity = stored_entity(stored, "rec-1")
    assert entity is not None
    assert entity["State"] == "inactive"
    assert writes.pending_count() == 0
    writes.close()


def test_a_burst_of_changes_is_one_write_in_the_order_they_were_made(
    registry: Registry, gate: TableGate, stored: TableClient
) -> None:
    writes = writer(registry, group_commit_seconds=0.5)
    writes.submit("rec-2", start_change("rec-2", OPTIONS, state="active", at=T0), creates=True)
    for second, state in enumerate(("inactive", "active", "stopped"), start=1):
        writes.submit("rec-2", api_change("rec-2", state, second))
    assert writes.flush(10)

    assert gate.writes == 1
    entity = stored_entity(stored, "rec-2")
    assert entity is not None
    assert entity["State"] == "stopped"
    history = registry.get("rec-2")
    assert history is not None
    assert [e["state"] for e in history.history] == ["active", "inactive", "active", "stopped"]
    writes.close()


def test_a_durable_submit_completes_only_once_written(
    registry: Registry, gate: TableGate, stored: TableClient
) -> None:
    writes = writer(registry)
    gate.open.clear()
    written: Future[None] = writes.submit("rec-3", api_change("rec-3", "active", 0))
    assert not written.done()
    gate.open.set()
    assert written.result(timeout=10) is None
    assert stored_entity(stored, "rec-3") is not None
    writes.close()


def test_a_change_already_stored_is_not_applied_twice(registry: Registry) -> None:
    change = api_change("rec-4", "active", 0)
    registry.apply_changes("rec-4", [change])
    registry.apply_changes("rec-4", [change])  # a retry of a write that had landed
    entry = registry.get("rec-4", pending=[change])  # and a reader's overlay of it
    assert entry is not None
    assert len(entry.history) == 1


def test_an_older_api_change_landing_last_does_not_set_the_state(registry: Registry) -> None:
    """Two instances write after answering, so their writes can land out of order."""
    registry.apply_changes("rec-5", [api_change("rec-5", "inactive", 2)])
    registry.apply_changes("rec-5", [api_change("rec-5", "active", 1)])
    entry = registry.get("rec-5")
    assert entry is not None
    assert entry.state == "inactive"
    assert [e["state"] for e in entry.history] == ["active", "inactive"]


def test_the_backlog_is_bounded(registry: Registry, gate: TableGate) -> None:
    writes = writer(registry, max_pending=2)
    gate.open.clear()
    writes.submit("rec-6", api_change("rec-6", "active", 0))
    writes.ensure_capacity()
    writes.submit("rec-7", api_change("rec-7", "active", 0))
    with pytest.raises(RegistryUnavailableError, match="unwritten"):
        writes.ensure_capacity()
    gate.open.set()
    assert writes.flush(10)
    writes.ensure_capacity()
    writes.close()


def test_an_outage_is_retried_until_the_table_is_back(tmp_path: Path) -> None:
    private = Azurite(location=tmp_path / "azurite").start()
    name = unique_table_name()
    TableClient.from_connection_string(private.connection_string, name).create_table()
    registry = Registry(
        TableClient.from_connection_string(
            private.connection_string, name, retry_total=0, connection_timeout=2
        )
    )
    writes = writer(registry, retry_delays=(0.2,) * 50)
    restarted: Azurite | None = None
    try:
        private.stop()
        written = writes.submit("rec-8", api_change("rec-8", "active", 0))
        with pytest.raises(RegistryUnavailableError):
            written.result(timeout=20)  # a callback would answer 503 now; ACS retries
        assert writes.pending_count() == 1  # the change is still queued
        shown = writes.peek("rec-8")
        assert shown is not None and shown.state == "active"

        restarted = Azurite(
            location=private.location,
            blob_port=private.blob_port,
            queue_port=private.queue_port,
            table_port=private.table_port,
        ).start()
        assert writes.flush(30)
        entry = registry.get("rec-8")
        assert entry is not None and entry.state == "active"
    finally:
        writes.close(timeout=1)
        private.stop()
        if restarted is not None:
            restarted.stop()


def test_a_change_that_never_lands_is_logged_and_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private = Azurite(location=tmp_path / "azurite").start()
    registry = Registry(
        TableClient.from_connection_string(
            private.connection_string, unique_table_name(), retry_total=0, connection_timeout=2
        )
    )
    private.stop()
    writes = writer(registry, retry_delays=(0.01, 0.01))
    with caplog.at_level(logging.ERROR, logger="recording_pipeline.registry.writer"):
        writes.submit("rec-9", api_change("rec-9", "active", 0))
        assert writes.flush(30)
    assert writes.pending_count() == 0
    assert writes.peek("rec-9") is None
    assert any(
        REGISTRY_WRITE_FAILED_MARKER in r.getMessage() and "rec-9" in r.getMessage()
        for r in caplog.records
    )
    writes.close()


def test_close_writes_what_is_queued(registry: Registry, stored: TableClient) -> None:
    writes = writer(registry, group_commit_seconds=5.0)
    writes.submit("rec-10", api_change("rec-10", "active", 0))
    assert writes.close(timeout=10)
    assert stored_entity(stored, "rec-10") is not None
    with pytest.raises(RegistryUnavailableError, match="closed"):
        writes.ensure_capacity()


class RecordingGate:
    """Holds the table writes of chosen recordings (found by partition key) until released."""

    def __init__(self, *recording_ids: str) -> None:
        self.released = {encode_id(r): threading.Event() for r in recording_ids}

    def __call__(self, request: Any) -> None:
        http = request.http_request
        if http.method not in WRITE_METHODS:
            return
        text = f"{http.url} {http.body!r}"
        for key, released in self.released.items():
            if key in text:
                assert released.wait(30), "the test never released the gate"

    def release(self, recording_id: str) -> None:
        self.released[encode_id(recording_id)].set()


def test_a_reader_waits_for_what_was_queued_before_it_not_after(
    azurite: Azurite, table_name: str
) -> None:
    gate = RecordingGate("rec-11", "rec-12")
    registry = Registry(
        TableClient.from_connection_string(
            azurite.connection_string, table_name, raw_request_hook=gate
        )
    )
    writes = writer(registry)
    writes.submit("rec-11", api_change("rec-11", "active", 0))
    with ThreadPoolExecutor(1) as pool:
        queued = writes.queued()
        waited = pool.submit(asyncio.run, written_within(queued, 20))
        later = writes.submit("rec-12", api_change("rec-12", "active", 0))  # after the reader
        gate.release("rec-11")
        assert waited.result(timeout=25) is None
    assert not later.done()  # rec-12 is still held, and did not hold the reader
    gate.release("rec-12")
    assert writes.flush(10)
    writes.close()


class FailingRecording:
    """Fails every table request of one recording as a network outage would."""

    def __init__(self, recording_id: str) -> None:
        self.key = encode_id(recording_id)
        self.failing = True

    def __call__(self, request: Any) -> None:
        http = request.http_request
        if self.failing and self.key in f"{http.url} {http.body!r}":
            raise ServiceRequestError("simulated outage")


def test_a_recording_whose_writes_fail_does_not_hold_up_the_others(
    azurite: Azurite, table_name: str, stored: TableClient
) -> None:
    outage = FailingRecording("rec-13")
    registry = Registry(
        TableClient.from_connection_string(
            azurite.connection_string, table_name, raw_request_hook=outage, retry_total=0
        )
    )
    writes = writer(registry, retry_delays=(3.0,) * 20)
    stuck = writes.submit("rec-13", api_change("rec-13", "active", 0))
    with pytest.raises(RegistryUnavailableError):
        stuck.result(timeout=10)  # its first attempt failed: a callback would get 503 now
    began = time.monotonic()
    others = [
        writes.submit(f"rec-14-{n}", api_change(f"rec-14-{n}", "active", 0)) for n in range(3)
    ]
    for other in others:
        assert other.result(timeout=10) is None
    assert time.monotonic() - began < 2.0  # not behind rec-13's 3 s backoff
    assert writes.peek("rec-13") is not None  # still queued, still shown
    outage.failing = False
    assert writes.flush(10)
    assert stored_entity(stored, "rec-13") is not None
    writes.close()


def test_a_change_the_table_refuses_is_dropped_at_once(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """A 4xx (here: a property too large for a Table entity) would fail the same way again."""
    too_large = "x" * 70_000

    def oversized(current: dict[str, Any] | None) -> dict[str, Any]:
        return {"RecordingId": "rec-15", "FailureReason": too_large}

    writes = writer(registry, retry_delays=(5.0,) * 10)
    with caplog.at_level(logging.ERROR, logger="recording_pipeline.registry.writer"):
        failed = writes.submit("rec-15", oversized, creates=True)
        with pytest.raises(RegistryUnavailableError):
            failed.result(timeout=10)
        assert writes.flush(3)  # no 5 s backoff: dropped after one attempt
    assert any(
        REGISTRY_WRITE_FAILED_MARKER in r.getMessage() and "1 attempt" in r.getMessage()
        for r in caplog.records
    )
    writes.close()


def test_changes_queued_during_a_retry_keep_their_own_attempts(
    azurite: Azurite, table_name: str, stored: TableClient, caplog: pytest.LogCaptureFixture
) -> None:
    outage = FailingRecording("rec-16")
    registry = Registry(
        TableClient.from_connection_string(
            azurite.connection_string, table_name, raw_request_hook=outage, retry_total=0
        )
    )
    writes = writer(registry, retry_delays=(0.2, 0.2))
    with caplog.at_level(logging.ERROR, logger="recording_pipeline.registry.writer"):
        first = writes.submit("rec-16", api_change("rec-16", "active", 0))
        with pytest.raises(RegistryUnavailableError):
            first.result(timeout=10)
        late = writes.submit("rec-16", api_change("rec-16", "inactive", 1))  # during backoff
        deadline = time.monotonic() + 10
        while writes.pending_count() > 1:  # the first batch runs out of attempts
            assert time.monotonic() < deadline, "the first batch was never dropped"
            time.sleep(0.02)
        outage.failing = False
        assert writes.flush(10)
    assert late.done()
    entity = stored_entity(stored, "rec-16")
    assert entity is not None and entity["State"] == "inactive"
    dropped = [
        r.getMessage() for r in caplog.records if REGISTRY_WRITE_FAILED_MARKER in r.getMessage()
    ]
    assert len(dropped) == 1 and "1 change(s) dropped after 3 attempt(s)" in dropped[0]
    writes.close()


def test_a_follow_up_is_retried_until_it_succeeds(registry: Registry) -> None:
    calls: list[float] = []

    def complete_claim() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RegistryUnavailableError("simulated outage")

    writes = writer(registry, retry_delays=(0.1,) * 3)
    writes.submit("rec-17", api_change("rec-17", "active", 0), then=complete_claim)
    assert writes.flush(10)
    assert len(calls) == 2
    writes.close()
