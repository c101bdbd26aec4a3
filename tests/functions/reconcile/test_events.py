"""The reconciler's own announcements (overdue, lost) and its retry of what was not published,
on the injected clock: a row is published once its grace has passed, dropped once its
recording has moved on."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ServiceRequestError
from azure.eventgrid import EventGridPublisherClient

from local_runtime.processes import Azurite
from recording_pipeline.clock import iso
from recording_pipeline.events_out.announce import RecordingEvents
from recording_pipeline.events_out.cloud_events import EventName, event_id
from recording_pipeline.events_out.publisher import EventsPublisher
from recording_pipeline.registry.pending import PendingIndex
from tests.functions.archive.conftest import RESOURCE_ID
from tests.functions.events_out.conftest import published, topic_env
from tests.functions.reconcile.conftest import T0, Bed, make_bed
from tests.support.emulator import RunningEmulator
from tests.support.event_schemas import schema_problems


@pytest.fixture
def events_bed(azurite: Azurite, module_emulator: RunningEmulator) -> Bed:
    module_emulator.simulation.reset()
    return make_bed(azurite, module_emulator, topic_env(module_emulator))


def pending(bed: Bed) -> list[str]:
    return [
        f"{row.event_name} {row.recording_id}"
        for row in bed.pending.events_before(T0 + timedelta(days=30))
    ]


def test_overdue_then_lost_are_announced_each_once(events_bed: Bed) -> None:
    bed = events_bed
    bed.stopped("rec-silent+/=", T0, ServerCallId="server-silent", FormatType="wav")

    bed.run(T0 + timedelta(minutes=31))
    bed.run(T0 + timedelta(hours=3))
    bed.run(T0 + timedelta(hours=25, minutes=1))

    overdue, lost = published(bed.emulator)
    assert [schema_problems(overdue), schema_problems(lost)] == [[], []]
    assert overdue["type"] == "AcsCallRecording.RecordingOverdue"
    assert overdue["id"] == event_id(EventName.OVERDUE, "rec-silent+/=")
    assert overdue["time"] == "2026-05-06T07:31:00.000Z"
    assert overdue["data"]["stoppedAt"] == iso(T0)
    assert overdue["data"]["serverCallId"] == "server-silent"
    assert overdue["data"]["format"]["format"] == "wav"
    assert "30 minutes" in overdue["data"]["reason"]
    assert lost["type"] == "AcsCallRecording.RecordingLost"
    assert "retention window" in lost["data"]["reason"]
    assert lost["data"]["lostAt"] == iso(T0 + timedelta(hours=25, minutes=1))
    assert pending(bed) == []


def test_a_failed_overdue_publish_is_published_by_a_later_run(
    events_bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    bed = events_bed
    bed.stopped("rec-late", T0)
    bed.emulator.simulation.set_faults(
        [{"operation": "publish_events", "kind": "error", "status": 503}]
    )

    with caplog.at_level(logging.ERROR):
        marking = bed.run(T0 + timedelta(minutes=31))

    assert [item["recordingId"] for item in marking.overdue.marked] == ["rec-late"]
    assert "EVENT_PUBLISH_FAILED recording rec-late: RecordingOverdue" in caplog.text
    assert published(bed.emulator) == []
    assert pending(bed) == ["RecordingOverdue rec-late"]

    bed.emulator.simulation.set_faults([])
    too_soon = bed.run(T0 + timedelta(minutes=40))
    assert too_soon.events.published == [] and published(bed.emulator) == []

    retry = bed.run(T0 + timedelta(minutes=47))

    assert [item["recordingId"] for item in retry.events.published] == ["rec-late"]
    (event,) = published(bed.emulator)
    assert event["time"] == "2026-05-06T07:31:00.000Z"
    assert pending(bed) == []


def test_an_event_whose_recording_moved_on_is_dropped_not_published_late(
    events_bed: Bed,
) -> None:
    bed = events_bed
    bed.stopped("rec-rescued", T0)
    bed.emulator.simulation.set_faults(
        [{"operation": "publish_events", "kind": "error", "status": 503}]
    )
    bed.run(T0 + timedelta(minutes=31))
    bed.emulator.simulation.set_faults([])
    bed.put_recording("rec-rescued", ArchiveStatus="archived")  # a late event archived it

    report = bed.run(T0 + timedelta(hours=1))

    assert [item["recordingId"] for item in report.events.superseded] == ["rec-rescued"]
    assert report.events.published == []
    assert published(bed.emulator) == []
    assert pending(bed) == []


def test_an_intention_whose_change_never_happened_is_dropped(events_bed: Bed) -> None:
    """A flow that wrote its row and crashed before the change leaves nothing to announce."""
    bed = events_bed
    bed.put_recording("rec-crashed", RecordingId="rec-crashed", State="stopped")
    bed.pending.add_event("RecordingLost", "rec-crashed", iso(T0), reason="gone")

    report = bed.run(T0 + timedelta(minutes=20))

    assert [item["recordingId"] for item in report.events.superseded] == ["rec-crashed"]
    assert published(bed.emulator) == []


def test_a_dry_run_publishes_nothing_and_keeps_every_row(events_bed: Bed) -> None:
    bed = events_bed
    bed.put_recording("rec-dry", RecordingId="rec-dry", ArchiveStatus="lost", ArchiveError="x")
    bed.pending.add_event("RecordingLost", "rec-dry", iso(T0), reason="x")

    report = bed.run(T0 + timedelta(hours=1), dry_run=True)

    assert [item["recordingId"] for item in report.events.published] == ["rec-dry"]
    assert published(bed.emulator) == []
    assert pending(bed) == ["RecordingLost rec-dry"]


def test_without_a_topic_the_reconciler_notes_and_publishes_nothing(bed: Bed) -> None:
    bed.stopped("rec-quiet", T0)

    report = bed.run(T0 + timedelta(minutes=31))

    assert [item["recordingId"] for item in report.overdue.marked] == ["rec-quiet"]
    assert report.events.ran is False
    assert pending(bed) == []


class BlackHole:
    """A topic that accepts connections and never answers (a hung endpoint); counts them."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}/api/events"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self._server.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in (*self._held, self._server):
            connection.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_a_hung_topic_costs_one_timeout_per_run_and_is_reported_once(
    events_bed: Bed, black_hole: BlackHole, caplog: pytest.LogCaptureFixture
) -> None:
    bed = events_bed
    publisher = EventsPublisher(
        EventGridPublisherClient(black_hole.endpoint, AzureKeyCredential("key")),
        retry_total=0,
        timeout_seconds=1,
    )
    announcer = RecordingEvents(publisher, bed.table, bed.clients.recordings, source=RESOURCE_ID)
    bed.clients = dataclasses.replace(bed.clients, announcer=announcer)
    for index in range(2):
        bed.stopped(f"rec-overdue-{index}", T0)
    for index in range(4):
        recording_id = f"rec-lost-{index}"
        bed.put_recording(recording_id, RecordingId=recording_id, ArchiveStatus="lost")
        bed.pending.add_event("RecordingLost", recording_id, iso(T0), reason="gone")

    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        report = bed.run(T0 + timedelta(minutes=31))
    elapsed = time.monotonic() - started

    assert black_hole.connections == 1
    assert elapsed < 5, f"the run took {elapsed:.1f} s"
    assert [item["recordingId"] for item in report.overdue.marked] == [
        "rec-overdue-0",
        "rec-overdue-1",
    ]
    assert report.events.paused_by is not None and "Service" in report.events.paused_by
    assert report.events.published == [] and report.events.failing == []
    assert "paused after an outage" in report.summary()
    assert report.to_json()["events"]["pausedBy"] == report.events.paused_by
    assert caplog.text.count("no more events published in this run") == 1
    assert len(pending(bed)) == 6  # every change still to announce, for the next run

    bed.run(T0 + timedelta(minutes=32))

    assert black_hole.connections == 2  # the next run tries again, once


def test_a_published_event_whose_row_stays_is_a_warning_not_a_failure(
    events_bed: Bed, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Event Grid accepted the event and only the row's delete failed: nothing was lost, the
    reconciler's repeat carries the same id, so no alert (the marker) is raised."""
    bed = events_bed
    bed.put_recording("rec-told", RecordingId="rec-told", ArchiveStatus="lost")
    row = bed.pending.add_event("RecordingLost", "rec-told", iso(T0), reason="gone")

    def registry_outage(self: PendingIndex, row: object) -> None:
        raise ServiceRequestError("the registry could not be reached")

    monkeypatch.setattr(PendingIndex, "remove_event", registry_outage)
    with caplog.at_level(logging.INFO):
        outcome = bed.clients.announcer.announce(row)

    assert outcome.published and outcome.error is None
    (event,) = published(bed.emulator)
    assert event["id"] == event_id(EventName.LOST, "rec-told")
    assert "EVENT_PUBLISH_FAILED" not in caplog.text
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "pending row was not deleted" in warning.getMessage()
    monkeypatch.undo()
    assert pending(bed) == ["RecordingLost rec-told"]
