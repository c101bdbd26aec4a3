"""The reconciler's own announcements (overdue, lost) and its retry of what was not published,
on the injected clock: a row is published once its grace has passed, dropped once its
recording has moved on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from local_runtime.processes import Azurite
from recording_pipeline.clock import iso
from recording_pipeline.events_out.cloud_events import EventName, event_id
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
