"""Poisoned events: outages replayed (bounded, spaced), refusals and bad input left alone."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta

import pytest

from recording_pipeline.archive.poison import poison_envelope
from tests.functions.reconcile.conftest import T0, Bed, synthetic_event

OUTAGE = "SourceUnavailableError: https://x.asm.skype.com/v1/objects/d/content/audio: 6 failures"


def body_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def poisoned(bed: Bed, *, status: str | None, error: str = "") -> tuple[str, str]:
    """A message the host moved after its last attempt, and the recording it names."""
    recording = synthetic_event()
    content = recording.message()
    if status is not None:
        bed.put_recording(recording.recording_id, ArchiveStatus=status, ArchiveError=error)
    bed.clients.poison.send_message(content)
    return recording.recording_id, content


def test_an_outage_is_replayed_counted_and_removed_from_the_poison_queue(bed: Bed) -> None:
    recording_id, content = poisoned(bed, status="failed", error=OUTAGE)

    report = bed.run(T0)

    assert [m.content for m in bed.clients.events.peek_messages()] == [content]
    assert bed.poison_contents() == []
    assert report.poison.replayed == [{"recordingId": recording_id, "replays": 1, "error": OUTAGE}]
    assert bed.pending.replays(body_hash(content)).count == 1
    assert not report.needs_person


@pytest.mark.parametrize(
    "status", [None, "archiving"], ids=["no registry row (table outage)", "last attempt crashed"]
)
def test_a_failure_nobody_wrote_down_counts_as_an_outage(bed: Bed, status: str | None) -> None:
    recording_id, content = poisoned(bed, status=status)

    report = bed.run(T0)

    assert [item["recordingId"] for item in report.poison.replayed] == [recording_id]
    assert [m.content for m in bed.clients.events.peek_messages()] == [content]


def test_a_refusal_is_left_for_a_person(bed: Bed) -> None:
    error = "ClientAuthenticationError (HTTP 403): This request is not authorized"
    recording_id, content = poisoned(bed, status="failed", error=error)

    report = bed.run(T0)

    assert report.poison.permanent == [{"recordingId": recording_id, "error": error}]
    assert report.needs_person
    assert bed.poison_contents() == [content]  # visible again at once
    assert bed.clients.events.peek_messages() == []


@pytest.mark.parametrize(
    ("status", "evidence"),
    [
        ("archived", None),
        ("erased", None),
        ("lost", "acs-404-after-verification"),
        ("lost", "retention-window-passed"),
    ],
)
def test_a_message_whose_recording_is_done_is_deleted(
    bed: Bed, status: str, evidence: str | None
) -> None:
    recording_id, _ = poisoned(bed, status=status)
    if evidence is not None:
        bed.put_recording(recording_id, ArchiveLostEvidence=evidence)

    report = bed.run(T0)

    assert report.poison.resolved == [{"recordingId": recording_id, "status": status}]
    assert bed.poison_contents() == []
    assert bed.clients.events.peek_messages() == []


def test_lost_without_verified_evidence_is_not_final_and_the_event_is_replayed(
    bed: Bed,
) -> None:
    """``lost`` written before events were bound to the registry (a forged event could write it):
    ACS may still hold the recording, so its real event is put back, never thrown away."""
    recording_id, content = poisoned(bed, status="lost", error="source expired: chunk 0 (404")

    report = bed.run(T0)

    assert report.poison.resolved == []
    assert [item["recordingId"] for item in report.poison.replayed] == [recording_id]
    assert [m.content for m in bed.clients.events.peek_messages()] == [content]


def test_the_archivers_envelopes_are_never_replayed(bed: Bed) -> None:
    event = synthetic_event().message(topic="/subscriptions/x/other")
    envelope = poison_envelope(
        reason="topic '/subscriptions/x/other' is not the configured ACS resource",
        message_id="m-1",
        body=event,
        received_at=T0,
    )
    bed.clients.poison.send_message(envelope)
    bed.clients.poison.send_message("definitely not an event")

    report = bed.run(T0)

    assert [item["messageId"] is not None for item in report.poison.rejected] == [True, True]
    assert "not the configured ACS resource" in report.poison.rejected[0]["reason"]
    assert "not replayable" in report.poison.rejected[1]["reason"]
    assert sorted(bed.poison_contents()) == sorted([envelope, "definitely not an event"])
    assert bed.clients.events.peek_messages() == []
    assert not report.needs_person


def test_replays_are_spaced_and_bounded(bed: Bed) -> None:
    bed.policy = dataclasses.replace(bed.policy, max_poison_replays=2)
    recording_id, content = poisoned(bed, status="failed", error=OUTAGE)
    bed.run(T0)
    bed.clients.events.clear_messages()
    bed.clients.poison.send_message(content)  # the replay failed again: back in the poison queue

    waiting = bed.run(T0 + timedelta(minutes=10))  # within the 15 minutes after replay 1

    assert waiting.poison.waiting == [{"recordingId": recording_id, "replays": 1}]
    assert bed.poison_contents() == [content]

    second = bed.run(T0 + timedelta(minutes=16))

    assert [item["replays"] for item in second.poison.replayed] == [2]
    bed.clients.poison.send_message(content)

    exhausted = bed.run(T0 + timedelta(hours=2))

    assert exhausted.poison.exhausted == [
        {"recordingId": recording_id, "replays": 2, "error": OUTAGE}
    ]
    assert exhausted.needs_person
    assert bed.poison_contents() == [content]


def test_a_dry_run_decides_but_changes_nothing(bed: Bed) -> None:
    recording_id, content = poisoned(bed, status="failed", error=OUTAGE)

    report = bed.run(T0, dry_run=True)

    assert [item["recordingId"] for item in report.poison.replayed] == [recording_id]
    assert bed.poison_contents() == [content]
    assert bed.clients.events.peek_messages() == []
    assert bed.pending.replays(body_hash(content)).count == 0
