"""Dead-lettered events back on the events queue: each once, marked, nothing else changed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from recording_pipeline.archive.events import parse_event_message
from recording_pipeline.reconcile.dead_letters import DEAD_LETTER_PROPERTIES, RECONCILED_BYTES_TAG
from recording_pipeline.registry.pending import PendingIndex
from tests.functions.archive.conftest import RESOURCE_ID
from tests.functions.reconcile.conftest import T0, Bed, synthetic_event

DEAD = {
    "deadLetterReason": "MaxDeliveryAttemptsExceeded",
    "deliveryAttempts": 30,
    "lastDeliveryOutcome": "TimedOut",
    "lastHttpStatusCode": 408,
    "publishTime": "2026-05-06T06:50:00.000Z",
    "lastDeliveryAttemptTime": "2026-05-06T06:59:00.000Z",
}
BLOB = "ACSREC-EVENTS/RECORDING-FILE-STATUS/2026/5/6/6/3f1c6a0e-7d3b-4b57-9a55-0c4f8d0e2a11.json"


def dead_letters(bed: Bed) -> ContainerClient:
    container = bed.clients.dead_letters
    if not container.exists():
        container.create_container()
    return container


def write_dead_letter(bed: Bed, events: list[dict], name: str = BLOB) -> None:
    dead_letters(bed).upload_blob(name, json.dumps([{**e, **DEAD} for e in events]), overwrite=True)


def test_each_recording_event_is_re_enqueued_once_without_the_dead_letter_fields(
    bed: Bed,
) -> None:
    first, second = synthetic_event(), synthetic_event()
    other = {**synthetic_event().event(), "eventType": "Microsoft.Communication.CallEnded"}
    write_dead_letter(bed, [first.event(), other, second.event()])

    report = bed.run(T0)

    queued = bed.queued_events()
    assert queued == [first.event(), second.event()]
    assert not any(DEAD_LETTER_PROPERTIES & event.keys() for event in queued)
    assert [
        parse_event_message(json.dumps(e), resource_id=RESOURCE_ID).recording_id for e in queued
    ]
    assert [item["recordingId"] for item in report.dead_letters.requeued] == [
        first.recording_id,
        second.recording_id,
    ]
    assert report.dead_letters.other_events == 1
    tags = dead_letters(bed).get_blob_client(BLOB).get_blob_tags()
    assert tags[RECONCILED_BYTES_TAG] == str(
        dead_letters(bed).get_blob_client(BLOB).get_blob_properties().size
    )
    assert not report.needs_person

    again = bed.run(T0 + timedelta(minutes=10))

    assert again.dead_letters.requeued == []
    assert len(bed.queued_events()) == 2
    assert json.loads(dead_letters(bed).download_blob(BLOB).readall())[0]["deadLetterReason"]


def test_a_blob_that_grew_after_it_was_marked_is_read_again(bed: Bed) -> None:
    first = synthetic_event()
    write_dead_letter(bed, [first.event()])
    bed.run(T0)
    later = synthetic_event()
    write_dead_letter(bed, [first.event(), later.event()])

    report = bed.run(T0 + timedelta(minutes=10))

    assert [item["recordingId"] for item in report.dead_letters.requeued] == [
        first.recording_id,
        later.recording_id,
    ]
    assert len(bed.queued_events()) == 3  # the first twice at most, which the archiver absorbs


def test_a_dry_run_reports_and_changes_nothing(bed: Bed) -> None:
    event = synthetic_event()
    write_dead_letter(bed, [event.event()])

    report = bed.run(T0, dry_run=True)

    assert [item["recordingId"] for item in report.dead_letters.requeued] == [event.recording_id]
    assert "would re-enqueue" in report.summary()
    assert bed.queued_events() == []
    assert dead_letters(bed).get_blob_client(BLOB).get_blob_tags() == {}


def test_an_unreadable_blob_is_reported_once_and_needs_a_person(bed: Bed) -> None:
    dead_letters(bed).upload_blob(BLOB, b"{not json")

    report = bed.run(T0)

    assert report.dead_letters.unreadable == [
        {"blob": BLOB, "problem": "not JSON (JSONDecodeError)"}
    ]
    assert report.needs_person
    assert bed.run(T0 + timedelta(minutes=10)).dead_letters.unreadable == []


def test_an_event_too_big_for_a_queue_message_is_reported(bed: Bed) -> None:
    event = synthetic_event().event()
    event["data"]["padding"] = "x" * 70_000
    write_dead_letter(bed, [event])

    report = bed.run(T0)

    (problem,) = report.dead_letters.unreadable
    assert "too big for a queue message" in problem["problem"]
    assert bed.queued_events() == []


def test_no_dead_letter_container_yet_is_nothing_to_do(bed: Bed) -> None:
    assert not bed.clients.dead_letters.exists()

    report = bed.run(T0)

    assert report.errors == []
    assert report.dead_letters.blobs_read == 0


def test_a_blob_whose_tag_cannot_be_written_is_re_enqueued_once_and_blocks_no_other(
    bed: Bed,
) -> None:
    """A blob holds at most 10 index tags: the mark goes to the registry, the next blob is still
    read, and no run sends the first blob's events again."""
    full, other = synthetic_event(), synthetic_event()
    ten_tags = {f"t{index}": "v" for index in range(10)}
    dead_letters(bed).upload_blob("a/full.json", json.dumps([full.event()]), tags=ten_tags)
    write_dead_letter(bed, [other.event()], name="b/other.json")

    report = bed.run(T0)
    again = bed.run(T0 + timedelta(minutes=10))

    assert report.errors == [] and again.errors == []
    assert [item["recordingId"] for item in report.dead_letters.requeued] == [
        full.recording_id,
        other.recording_id,
    ]
    (untagged,) = report.dead_letters.untagged
    assert untagged["blob"] == "a/full.json" and "400" in untagged["reason"]
    assert report.needs_person
    assert again.dead_letters.requeued == [] and again.dead_letters.untagged == []
    assert not again.needs_person
    assert len(bed.queued_events()) == 2
    assert RECONCILED_BYTES_TAG in dead_letters(bed).get_blob_client("b/other.json").get_blob_tags()

    dead_letters(bed).delete_blob("a/full.json")  # the lifecycle rule deletes it in the end
    bed.run(T0 + timedelta(minutes=20))
    assert PendingIndex(bed.table).dead_letter_marks() == {}


def test_a_blob_that_cannot_be_read_is_reported_and_the_others_still_are(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, fine = synthetic_event(), synthetic_event()
    write_dead_letter(bed, [broken.event()], name="a/broken.json")
    write_dead_letter(bed, [fine.event()], name="b/fine.json")
    download = bed.clients.dead_letters.download_blob

    def refuse_one(name: str, *args: object, **kwargs: object) -> object:
        if name == "a/broken.json":
            raise HttpResponseError(message="injected refusal")
        return download(name, *args, **kwargs)

    monkeypatch.setattr(bed.clients.dead_letters, "download_blob", refuse_one)

    report = bed.run(T0)

    assert report.errors == []
    (problem,) = report.dead_letters.unreadable
    assert problem["blob"] == "a/broken.json" and "injected refusal" in problem["problem"]
    assert [item["recordingId"] for item in report.dead_letters.requeued] == [fine.recording_id]
    assert dead_letters(bed).get_blob_client("a/broken.json").get_blob_tags() == {}
