"""The sweep repairs the stop index (a lost index write, a hang-up nobody saw); ACS deletions
that did not happen are finished."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.client import emulator_call_automation_client
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import parse_subject
from recording_pipeline.clock import iso, utc_now
from tests.functions.archive.conftest import register_recording
from tests.functions.reconcile.conftest import T0, Bed


def started_at_acs(bed: Bed) -> tuple[str, str]:
    """A recording ACS (the emulator) is making now: (recording id, server call id)."""
    call = bed.emulator.simulation.create_call(["8:acs:sweep"])
    with bed.emulator.sdk_client() as client:
        started = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_format_type="wav",
        )
    return started.recording_id, call["serverCallId"]


def registry_active(bed: Bed, recording_id: str, created_minutes_ago: int = 60) -> None:
    created = iso(T0 - timedelta(minutes=created_minutes_ago))
    bed.put_recording(
        recording_id,
        RecordingId=recording_id,
        State="active",
        StateHistoryJson=json.dumps([{"state": "active", "at": created, "source": "api"}]),
        CreatedAt=created,
        UpdatedAt=created,
    )


def test_a_stopped_recording_whose_index_row_was_lost_is_indexed_at_its_stop_time(
    bed: Bed,
) -> None:
    bed.stopped("rec-unindexed", T0 - timedelta(minutes=45))
    bed.pending.remove_stopped(next(iter(bed.pending.stopped_before(T0))))
    assert bed.stopped_rows() == []
    bed.stopped("rec-indexed", T0 + timedelta(minutes=1))  # its row is there: nothing to repair

    report = bed.run(T0)

    assert report.sweep.ran
    stopped_at = iso(T0 - timedelta(minutes=45))
    assert report.sweep.indexed == [{"recordingId": "rec-unindexed", "stoppedAt": stopped_at}]
    assert sorted(bed.stopped_rows()) == ["rec-indexed", "rec-unindexed"]
    assert report.overdue.marked == [{"recordingId": "rec-unindexed", "stoppedAt": stopped_at}]


def test_a_recording_acs_ended_without_a_stop_is_found_and_indexed(bed: Bed) -> None:
    ended, call = started_at_acs(bed)
    bed.emulator.simulation.hangup(call)
    live, _ = started_at_acs(bed)
    young, _ = started_at_acs(bed)
    registry_active(bed, ended)
    registry_active(bed, live)
    registry_active(bed, young, created_minutes_ago=5)

    report = bed.run(T0)

    assert report.sweep.ended_at_acs == [{"recordingId": ended, "stoppedAt": iso(T0)}]
    entity = bed.entity(ended)
    assert entity["State"] == "stopped"
    assert json.loads(entity["StateHistoryJson"])[-1] == {
        "state": "stopped",
        "at": iso(T0),
        "source": "acs",
    }
    assert bed.stopped_rows() == [ended]
    assert bed.entity(live)["State"] == "active"
    # Overdue counts from when the sweep saw it end, the latest the stop can have been.
    assert bed.run(T0 + timedelta(minutes=29)).overdue.marked == []
    later = bed.run(T0 + timedelta(minutes=31))
    assert [item["recordingId"] for item in later.overdue.marked] == [ended]


def test_the_sweep_runs_hours_apart_and_reads_only_recent_recordings(bed: Bed) -> None:
    bed.stopped("rec-old", T0 - timedelta(days=10))
    bed.pending.remove_stopped(next(iter(bed.pending.stopped_before(T0))))

    first = bed.run(T0)
    bed.stopped("rec-new", T0 + timedelta(hours=1))
    bed.pending.remove_stopped(next(iter(bed.pending.stopped_before(T0 + timedelta(days=1)))))
    not_due = bed.run(T0 + timedelta(hours=2))
    forced = bed.run(T0 + timedelta(hours=2), force_sweep=True)

    # The first sweep has no previous one: it reads everything, the old recording too.
    assert [item["recordingId"] for item in first.sweep.indexed] == ["rec-old"]
    assert not not_due.sweep.ran
    assert "sweep: not due" in not_due.summary()
    # Later sweeps read from the previous sweep minus the lookback (3 days): not rec-old's row.
    assert [item["recordingId"] for item in forced.sweep.indexed] == ["rec-new"]


def manifest_for(bed: Bed, recording_id: str, delete_locations: list[str]) -> str:
    name = f"2026/05/06/call/{recording_id}/manifest.json"
    manifest: dict[str, Any] = {
        "recordingId": recording_id,
        "archivedAt": iso(T0 - timedelta(hours=1)),
        "chunks": [{"index": i, "deleteLocation": url} for i, url in enumerate(delete_locations)],
    }
    bed.clients.recordings.upload_blob(name, json.dumps(manifest))
    bed.pending.add_acs_delete(recording_id, manifest["archivedAt"], name)
    return name


def recorded_chunks(bed: Bed) -> tuple[str, list[str]]:
    recording_id, call = started_at_acs(bed)
    bed.emulator.simulation.advance_clock(1)
    bed.emulator.simulation.hangup(call)
    event = bed.emulator.simulation.wait_for_event(recording_id)
    chunks = event["data"]["recordingStorageInfo"]["recordingChunks"]
    return recording_id, [chunk["deleteLocation"] for chunk in chunks]


def acs_status(bed: Bed, recording_id: str) -> set[str]:
    objects = bed.emulator.simulation.objects()["objects"]
    return {o["status"] for o in objects if o["recordingId"] == recording_id}


def test_an_archived_recording_still_at_acs_is_deleted_there(bed: Bed) -> None:
    recording_id, locations = recorded_chunks(bed)
    manifest_for(bed, recording_id, locations)
    assert acs_status(bed, recording_id) == {"stored"}

    report = bed.run(T0)

    assert acs_status(bed, recording_id) == {"deleted"}
    assert [item["recordingId"] for item in report.acs_deletes.deleted] == [recording_id]
    assert list(bed.pending.acs_deletes_before(T0 + timedelta(days=1))) == []


def test_a_refused_deletion_is_kept_for_a_person_and_an_outage_for_the_next_run(
    bed: Bed,
) -> None:
    recording_id, locations = recorded_chunks(bed)
    manifest_for(bed, recording_id, locations)
    wrong_key = base64.b64encode(secrets.token_bytes(32)).decode()
    refused = dataclasses.replace(
        bed.clients,
        acs=emulator_call_automation_client(bed.emulator.endpoint, wrong_key, retry_total=0),
    )
    bed.clients = refused

    report = bed.run(T0)

    (failing,) = report.acs_deletes.failing
    assert failing["retry"] == "permanent"
    assert "401" in failing["error"]
    assert report.needs_person

    bed.clients = dataclasses.replace(refused, acs=bed.emulator.sdk_client(retry_total=0))
    bed.emulator.simulation.set_faults(
        [{"operation": "delete_recording", "kind": "error", "status": 503, "times": 1}]
    )
    outage = bed.run(T0 + timedelta(minutes=10))
    assert [item["retry"] for item in outage.acs_deletes.failing] == ["transient"]
    assert not outage.needs_person
    assert acs_status(bed, recording_id) == {"stored"}

    done = bed.run(T0 + timedelta(minutes=20))
    assert [item["recordingId"] for item in done.acs_deletes.deleted] == [recording_id]
    assert acs_status(bed, recording_id) == {"deleted"}
    bed.emulator.simulation.set_faults([])


def test_deletions_are_left_alone_when_deleting_from_acs_is_off(bed: Bed) -> None:
    recording_id, locations = recorded_chunks(bed)
    manifest_for(bed, recording_id, locations)
    bed.policy = dataclasses.replace(bed.policy, delete_from_acs=False)

    report = bed.run(T0)

    assert report.acs_deletes.deleted == []
    assert acs_status(bed, recording_id) == {"stored"}


def test_the_archiver_notes_a_failed_acs_deletion_and_the_reconciler_finishes_it(
    bed: Bed,
) -> None:
    settings = dataclasses.replace(bed.settings, acs_resource_id=bed.emulator.resource_id)
    failing, _ = recorded_chunks(bed)
    clean, _ = recorded_chunks(bed)
    events = {r: bed.emulator.simulation.wait_for_event(r) for r in (failing, clean)}
    for event in events.values():  # started through the API, named by a verified callback
        register_recording(bed.table, *parse_subject(event["subject"]))
    everything = utc_now() + timedelta(days=1)

    assert handle_event_message(json.dumps(events[clean]), settings=settings) is (
        ArchiveOutcome.ARCHIVED
    )
    assert list(bed.pending.acs_deletes_before(everything)) == []  # noted, then removed
    bed.emulator.simulation.set_faults(
        [{"operation": "delete_recording", "kind": "error", "status": 503}]
    )
    with pytest.raises(HttpResponseError):
        handle_event_message(json.dumps(events[failing]), dequeue_count=5, settings=settings)

    assert bed.entity(failing)["ArchiveStatus"] == "archived"
    assert [row.recording_id for row in bed.pending.acs_deletes_before(everything)] == [failing]
    assert acs_status(bed, failing) == {"stored"}

    bed.emulator.simulation.set_faults([])
    report = bed.run(utc_now() + timedelta(minutes=20))

    assert [item["recordingId"] for item in report.acs_deletes.deleted] == [failing]
    assert acs_status(bed, failing) == {"deleted"}
    assert list(bed.pending.acs_deletes_before(everything)) == []


def registry_failed(bed: Bed, recording_id: str, *, reported_active: bool) -> None:
    """``failed`` by a StartRecordingFailed callback, after the API's start (and, when
    ``reported_active``, after ACS's RecordingStateChanged ``active``)."""
    created = iso(T0 - timedelta(minutes=60))
    entries = [{"state": "active", "at": created, "source": "api"}]
    if reported_active:
        at = iso(T0 - timedelta(minutes=59))
        entries.append({"state": "active", "at": at, "source": "callback", "eventId": "e-1"})
    at = iso(T0 - timedelta(minutes=50))
    entries.append({"state": "failed", "at": at, "source": "callback", "eventId": "e-2"})
    bed.put_recording(
        recording_id,
        RecordingId=recording_id,
        State="failed",
        FailureReason="500/1: forged",
        StateHistoryJson=json.dumps(entries),
        CreatedAt=created,
        UpdatedAt=at,
    )


def test_a_failed_recording_acs_still_records_is_restored_and_reported(bed: Bed) -> None:
    recording_id, _ = started_at_acs(bed)
    registry_failed(bed, recording_id, reported_active=True)

    report = bed.run(T0)

    assert report.sweep.failure_contradicted == [
        {"recordingId": recording_id, "liveState": "active"}
    ]
    assert report.needs_person
    assert bed.entity(recording_id)["State"] == "active"
    assert json.loads(bed.entity(recording_id)["StateHistoryJson"])[-1] == {
        "state": "active",
        "at": iso(T0),
        "source": "acs",
    }


def test_a_failed_recording_that_had_been_recording_is_watched_until_archived(bed: Bed) -> None:
    """A failure (forged, or real after recording began) of a recording ACS no longer has: its
    documents may exist, so it becomes overdue, then lost, loudly, if no event comes."""
    recorded, recorded_call = started_at_acs(bed)
    never, never_call = started_at_acs(bed)
    for call in (recorded_call, never_call):
        bed.emulator.simulation.hangup(call)
    registry_failed(bed, recorded, reported_active=True)
    registry_failed(bed, never, reported_active=False)  # a start that failed: left alone

    report = bed.run(T0)
    again = bed.run(T0 + timedelta(minutes=10), force_sweep=True)

    assert report.sweep.indexed == [
        {"recordingId": recorded, "stoppedAt": iso(T0), "after": "failed"}
    ]
    assert again.sweep.indexed == []  # indexed once
    assert bed.stopped_rows() == [recorded]
    later = bed.run(T0 + timedelta(minutes=31))
    assert [item["recordingId"] for item in later.overdue.marked] == [recorded]
