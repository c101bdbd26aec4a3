"""Stopped with no archive: overdue after the overdue time, lost once ACS's window has passed."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from recording_pipeline.clock import iso
from tests.functions.reconcile.conftest import T0, Bed


def test_a_recording_is_overdue_after_thirty_minutes_and_lost_after_the_window(
    bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    bed.stopped("rec-quiet+/=", T0)

    early = bed.run(T0 + timedelta(minutes=29))

    assert early.overdue.marked == []
    assert bed.entity("rec-quiet+/=")["State"] == "stopped"
    assert "ArchiveStatus" not in bed.entity("rec-quiet+/=")

    with caplog.at_level(logging.ERROR):
        overdue = bed.run(T0 + timedelta(minutes=31))

    assert overdue.overdue.marked == [{"recordingId": "rec-quiet+/=", "stoppedAt": iso(T0)}]
    entity = bed.entity("rec-quiet+/=")
    assert (entity["ArchiveStatus"], entity["OverdueAt"]) == (
        "overdue",
        iso(T0 + timedelta(minutes=31)),
    )
    assert "RECORDING_OVERDUE recording rec-quiet+/=" in caplog.text
    assert overdue.needs_person

    caplog.clear()
    still = bed.run(T0 + timedelta(hours=3))

    assert still.overdue.still == [{"recordingId": "rec-quiet+/=", "stoppedAt": iso(T0)}]
    assert "RECORDING_OVERDUE" not in caplog.text  # said once, when it became overdue

    lost = bed.run(T0 + timedelta(hours=25, minutes=1))

    assert lost.overdue.lost == [{"recordingId": "rec-quiet+/=", "stoppedAt": iso(T0)}]
    entity = bed.entity("rec-quiet+/=")
    assert entity["ArchiveStatus"] == "lost"
    assert entity["ArchiveLostEvidence"] == "retention-window-passed"
    assert "retention window" in entity["ArchiveError"]
    assert "RECORDING_LOST recording rec-quiet+/=" in caplog.text
    assert bed.stopped_rows() == []
    assert bed.run(T0 + timedelta(hours=26)).overdue.lost == []


def test_archived_recordings_leave_the_index_and_are_never_marked(bed: Bed) -> None:
    bed.stopped("rec-done", T0, ArchiveStatus="archived")
    bed.stopped("rec-erased", T0, ArchiveStatus="erased")

    report = bed.run(T0 + timedelta(hours=30))

    assert report.overdue.resolved == 2
    assert report.overdue.lost == report.overdue.marked == []
    assert bed.entity("rec-done")["ArchiveStatus"] == "archived"
    assert bed.stopped_rows() == []


def test_a_recording_whose_event_arrived_belongs_to_the_archiver(bed: Bed) -> None:
    bed.stopped("rec-copying", T0, ArchiveStatus="archiving")
    bed.stopped("rec-failed", T0, ArchiveStatus="failed", ArchiveError="SourceUnavailableError: x")

    report = bed.run(T0 + timedelta(hours=2))

    assert report.overdue.in_progress == 2
    assert report.overdue.marked == []
    assert bed.entity("rec-copying")["ArchiveStatus"] == "archiving"
    assert sorted(bed.stopped_rows()) == ["rec-copying", "rec-failed"]


def test_an_event_put_back_by_the_same_run_is_recovering_not_overdue(bed: Bed) -> None:
    from tests.functions.reconcile.conftest import synthetic_event
    from tests.functions.reconcile.test_dead_letters import write_dead_letter

    event = synthetic_event()
    bed.stopped(event.recording_id, T0)
    write_dead_letter(bed, [event.event()])

    report = bed.run(T0 + timedelta(minutes=40))

    assert report.overdue.recovering == [{"recordingId": event.recording_id, "stoppedAt": iso(T0)}]
    assert report.overdue.marked == []
    assert "ArchiveStatus" not in bed.entity(event.recording_id)


def test_a_copy_under_way_or_an_event_put_back_is_never_declared_lost(bed: Bed) -> None:
    """Past the retention window, but a copy is running, or this run re-enqueued the event."""
    from tests.functions.reconcile.conftest import synthetic_event
    from tests.functions.reconcile.test_dead_letters import write_dead_letter

    old = T0 - timedelta(hours=25, minutes=5)
    bed.stopped("rec-copying", old, ArchiveStatus="archiving")
    event = synthetic_event()
    bed.stopped(event.recording_id, old)
    write_dead_letter(bed, [event.event()])

    report = bed.run(T0)

    assert report.overdue.lost == []
    assert report.overdue.in_progress == 1
    assert [item["recordingId"] for item in report.overdue.recovering] == [event.recording_id]
    assert bed.entity("rec-copying")["ArchiveStatus"] == "archiving"
    assert "ArchiveStatus" not in bed.entity(event.recording_id)
    assert sorted(bed.stopped_rows()) == sorted(["rec-copying", event.recording_id])


def test_the_limit_counts_only_rows_acted_on_so_newer_stops_are_not_starved(bed: Bed) -> None:
    bed.policy = dataclasses.replace(bed.policy, max_items_per_step=3)
    for minutes in range(3):
        bed.stopped(f"rec-old-{minutes}", T0 - timedelta(hours=5, minutes=minutes))
        bed.put_recording(f"rec-old-{minutes}", ArchiveStatus="overdue")
    bed.stopped("rec-copying", T0 - timedelta(hours=4), ArchiveStatus="archiving")
    bed.stopped("rec-newer", T0 - timedelta(hours=1))

    report = bed.run(T0)

    assert len(report.overdue.still) == 3
    assert report.overdue.marked == [
        {"recordingId": "rec-newer", "stoppedAt": iso(T0 - timedelta(hours=1))}
    ]


def test_the_limit_still_bounds_the_rows_acted_on(bed: Bed) -> None:
    bed.policy = dataclasses.replace(bed.policy, max_items_per_step=2)
    for minutes in range(3):
        bed.stopped(f"rec-quiet-{minutes}", T0 - timedelta(hours=2, minutes=minutes))

    report = bed.run(T0)

    assert [item["recordingId"] for item in report.overdue.marked] == [
        "rec-quiet-2",
        "rec-quiet-1",
    ]


def test_overdue_is_written_only_while_no_event_was_seen(bed: Bed) -> None:
    """The conditional write: the archiver's status, written first, wins."""
    from recording_pipeline.registry.archive_writes import ArchiveRegistry

    bed.stopped("rec-race", T0)
    registry = ArchiveRegistry(bed.table)
    assert registry.mark_archiving("rec-race", {}) is True

    assert registry.mark_overdue("rec-race", iso(T0)) is False
    assert bed.entity("rec-race")["ArchiveStatus"] == "archiving"
    assert registry.mark_overdue("rec-unknown", iso(T0)) is False
    assert bed.entity("rec-unknown") is None


def test_a_dry_run_marks_nothing(bed: Bed) -> None:
    bed.stopped("rec-a", T0)
    bed.stopped("rec-b", T0 - timedelta(hours=26))

    report = bed.run(T0 + timedelta(hours=1), dry_run=True)

    assert [item["recordingId"] for item in report.overdue.marked] == ["rec-a"]
    assert [item["recordingId"] for item in report.overdue.lost] == ["rec-b"]
    assert "ArchiveStatus" not in bed.entity("rec-a")
    assert "ArchiveStatus" not in bed.entity("rec-b")
    assert sorted(bed.stopped_rows()) == ["rec-a", "rec-b"]


def test_the_index_is_read_oldest_first_and_only_up_to_the_cutoff(bed: Bed) -> None:
    for minutes, name in ((50, "rec-newer"), (90, "rec-oldest"), (5, "rec-recent")):
        bed.stopped(name, T0 - timedelta(minutes=minutes))

    rows = list(bed.pending.stopped_before(T0 - timedelta(minutes=30)))

    assert [row.recording_id for row in rows] == ["rec-oldest", "rec-newer"]
