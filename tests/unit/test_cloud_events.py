"""The CloudEvents the pipeline publishes, built from a manifest or the registry's facts (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.messaging import CloudEvent
from azure.eventgrid._legacy._generated._serialization import Serializer
from hypothesis import given
from hypothesis import strategies as st

from recording_pipeline.events_out.cloud_events import (
    EVENT_ID_NAMESPACE,
    MAX_EVENT_BYTES,
    MAX_REASON_CHARS,
    EventName,
    RecordingFacts,
    archived_event,
    encoded_size,
    event_id,
    status_event,
    subject,
    utc_time,
)
from recording_pipeline.ids import decode_id

SOURCE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/g/providers/"
    "Microsoft.Communication/communicationServices/acs"
)
PREFIX = "2026/05/06/call-1/rec%2B1%2F%3D/"


def blob_url(name: str) -> str:
    return f"https://archive.blob.core.windows.net/recordings/{name}"


def long_blob_url(name: str) -> str:
    """A URL as long as a deep, percent-encoded account path can make it (1,000 chunks' worth
    of these do not fit one event)."""
    return f"https://archive.blob.core.windows.net/recordings/{'%25AB' * 120}/{name}"


def manifest(chunks: int = 2) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "eventId": "evt-1",
        "callId": "call-1",
        "serverCallId": "server-call-1",
        "recordingId": "rec+1/=",
        "recordingStartTime": "2026-05-06T06:59:00+00:00",
        "recordingDurationMs": 2000 * chunks,
        "sessionEndReason": "CallEnded",
        "contentType": "audio",
        "channelType": "unmixed",
        "formatType": "wav",
        "blobPrefix": PREFIX,
        "chunks": [
            {
                "index": index,
                "documentId": f"doc-{index}",
                "endReason": "SessionEnded",
                "chunkStartTime": "2026-05-06T06:59:00Z",
                "chunkDurationMs": 2000,
                "contentBlob": f"{PREFIX}chunk-{index:04d}.wav",
                "contentBytes": 1000 + index,
                "contentMd5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "metadataBlob": f"{PREFIX}chunk-{index:04d}.metadata.json" if index else None,
                "metadataBytes": 300 if index else None,
                "metadataMd5": "XrY7u+Ae7tCTyyK7j1rNww==" if index else None,
                "metadataProblems": [],
                "deleteLocation": f"https://emu.asm.skype.com/v1/objects/doc-{index}",
            }
            for index in range(chunks)
        ],
        "totalBytes": sum(1000 + index for index in range(chunks)),
        "participants": [
            {"participantId": "8:acs:alice", "channels": [0]},
            {"participantId": "4:+15550100123", "channels": [1, 2]},
        ],
        "pauseResumeIntervals": [],
        "archivedAt": "2026-05-06T07:01:02.345678+00:00",
    }


def test_the_archived_event_carries_ids_format_participants_and_every_file() -> None:
    event = archived_event(manifest(), source=SOURCE, blob_url=blob_url)

    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0",
        "id": str(uuid.uuid5(EVENT_ID_NAMESPACE, "AcsCallRecording.RecordingArchived/rec+1/=")),
        "source": SOURCE,
        "type": "AcsCallRecording.RecordingArchived",
        "subject": "/recordings/rec%2B1%2F%3D",
        "time": "2026-05-06T07:01:02.345678Z",
        "datacontenttype": "application/json",
    }
    data = event["data"]
    assert (data["recordingId"], data["serverCallId"], data["callId"]) == (
        "rec+1/=",
        "server-call-1",
        "call-1",
    )
    assert data["format"] == {"content": "audio", "channel": "unmixed", "format": "wav"}
    assert data["participants"] == [
        {"participantId": "8:acs:alice", "channels": [0]},
        {"participantId": "4:+15550100123", "channels": [1, 2]},
    ]
    assert (data["recordingDurationMs"], data["chunkCount"], data["totalBytes"]) == (4000, 2, 2001)
    assert data["manifest"] == {"name": "manifest.json", "url": blob_url(PREFIX + "manifest.json")}
    assert [(f["name"], f["kind"], f["sizeBytes"]) for f in data["files"]] == [
        ("chunk-0000.wav", "content", 1000),
        ("chunk-0001.wav", "content", 1001),
        ("chunk-0001.metadata.json", "metadata", 300),
    ]
    assert data["files"][0]["md5"] == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert data["files"][0]["durationMs"] == 2000
    assert data["files"][2]["url"] == blob_url(PREFIX + "chunk-0001.metadata.json")
    assert data["filesTruncated"] is False


def test_no_signature_or_query_leaves_in_a_url() -> None:
    def signed(name: str) -> str:
        return blob_url(name) + "?sv=2025-01-05&sig=secret"

    event = archived_event(manifest(), source=SOURCE, blob_url=signed)

    text = json.dumps(event)
    assert "sig=" not in text and "?" not in text


def test_an_archive_too_big_for_one_event_lists_no_files_and_still_fits() -> None:
    event = archived_event(manifest(1000), source=SOURCE, blob_url=long_blob_url)

    assert event["data"]["filesTruncated"] is True
    assert event["data"]["files"] == []
    assert event["data"]["chunkCount"] == 1000
    assert encoded_size(event) <= MAX_EVENT_BYTES
    listed = archived_event(manifest(1000), source=SOURCE, blob_url=blob_url)
    assert listed["data"]["filesTruncated"] is False
    assert len(listed["data"]["files"]) == 1999
    assert encoded_size(listed) <= MAX_EVENT_BYTES


@given(st.text(min_size=1, max_size=200), st.sampled_from(list(EventName)))
def test_the_id_is_one_per_recording_and_type_and_the_subject_one_segment(
    recording_id: str, name: EventName
) -> None:
    assert event_id(name, recording_id) == event_id(name, recording_id)
    others = {event_id(other, recording_id) for other in EventName if other is not name}
    assert event_id(name, recording_id) not in others
    assert event_id(name, recording_id) != event_id(name, recording_id + "x")
    parts = subject(recording_id).split("/")
    assert parts[:2] == ["", "recordings"] and len(parts) == 3
    assert decode_id(parts[2]) == recording_id


@pytest.mark.parametrize(
    ("name", "reason", "extra"),
    [
        (EventName.LOST, "source expired", {"reason": "source expired"}),
        (
            EventName.FAILED,
            "HttpResponseError (HTTP 503): busy",
            {"reason": "HttpResponseError (HTTP 503): busy", "retryable": True},
        ),
        (
            EventName.FAILED,
            "ClientAuthenticationError (HTTP 403): no role",
            {"reason": "ClientAuthenticationError (HTTP 403): no role", "retryable": False},
        ),
        (
            EventName.OVERDUE,
            "no archive event within 30 minutes of the stop",
            {
                "reason": "no archive event within 30 minutes of the stop",
                "stoppedAt": "2026-05-06T06:30:00.000000Z",
            },
        ),
        (EventName.ERASED, None, {}),
    ],
)
def test_status_events_carry_the_ids_the_time_and_why(
    name: EventName, reason: str | None, extra: dict[str, Any]
) -> None:
    facts = RecordingFacts("rec-9", "server-9", "call-9", "audioVideo", "mixed", "mp4")

    event = status_event(
        name,
        facts,
        source=SOURCE,
        occurred_at="2026-05-06T07:00:00.000000Z",
        reason=reason,
        stopped_at="2026-05-06T06:30:00.000000Z",
    )

    assert event["type"] == f"AcsCallRecording.{name.value}"
    assert event["time"] == "2026-05-06T07:00:00.000Z"
    assert event["id"] == event_id(name, "rec-9")
    assert event["data"] == {
        "schemaVersion": 1,
        "recordingId": "rec-9",
        "serverCallId": "server-9",
        "callId": "call-9",
        "format": {"content": "audioVideo", "channel": "mixed", "format": "mp4"},
        f"{name.status}At": "2026-05-06T07:00:00.000000Z",
        **extra,
    }


#: Text around the URL: no query of its own, and no ``Q``, which only the secret has.
_WORDS = st.text(st.characters(codec="ascii", exclude_characters="?Q"), max_size=300)


@given(
    before=_WORDS,
    after=_WORDS,
    path=st.from_regex(r"/[a-z0-9/%._-]{0,60}", fullmatch=True),
    secret=st.from_regex(r"Q[A-Za-z0-9%+=/]{16,40}", fullmatch=True),
    name=st.sampled_from([EventName.LOST, EventName.FAILED, EventName.OVERDUE]),
)
def test_a_reason_leaves_without_url_queries_and_within_its_cap(
    before: str, after: str, path: str, secret: str, name: EventName
) -> None:
    """A reason is exception text: a SAS in a URL of it stays home, and so does a long body."""
    url = f"https://archive.blob.core.windows.net{path}"
    reason = f"{before} {url}?sv=2024-08-04&sig={secret}&se=2026 {after}" + "x" * 4000

    event = status_event(
        name,
        RecordingFacts("rec-1"),
        source=SOURCE,
        occurred_at="2026-05-06T07:00:00Z",
        reason=reason,
    )

    sent = event["data"]["reason"]
    assert secret not in sent and "sig=" not in sent
    assert len(sent) <= MAX_REASON_CHARS
    assert sent.startswith(f"{before} {url}"[: MAX_REASON_CHARS - 10])
    assert sent.endswith("[...]")


def test_a_short_reason_without_a_url_query_leaves_unchanged() -> None:
    reason = "HttpResponseError (HTTP 503): busy; see https://status.example/acs#today"

    event = status_event(
        EventName.FAILED,
        RecordingFacts("rec-1"),
        source=SOURCE,
        occurred_at="2026-05-06T07:00:00Z",
        reason=reason,
    )

    assert event["data"]["reason"] == reason
    assert event["data"]["retryable"] is True


def test_an_archive_is_announced_from_its_manifest_only() -> None:
    with pytest.raises(ValueError, match="manifest"):
        status_event(EventName.ARCHIVED, RecordingFacts("r"), source=SOURCE, occurred_at="x")


def test_what_the_registry_does_not_know_is_null() -> None:
    event = status_event(
        EventName.LOST,
        RecordingFacts("rec-hangup"),
        source=SOURCE,
        occurred_at="2026-05-06T07:00:00Z",
    )
    assert event["data"]["serverCallId"] is None
    assert event["data"]["format"] == {"content": None, "channel": None, "format": None}


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)
def test_time_is_written_exactly_as_the_sdk_sends_it(moment: datetime, offset_minutes: int) -> None:
    """The SDK reparses ``time`` and writes it back its own way: what we build must be that."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    built = utc_time(local.isoformat())

    assert built == Serializer.serialize_iso(moment)
    assert datetime.fromisoformat(built.replace("Z", "+00:00")) == moment


def test_a_consumer_reads_the_event_with_the_sdk() -> None:
    event = archived_event(manifest(), source=SOURCE, blob_url=blob_url)

    parsed = CloudEvent.from_dict(json.loads(json.dumps(event)))

    assert (parsed.id, parsed.type, parsed.subject) == (
        event["id"],
        "AcsCallRecording.RecordingArchived",
        "/recordings/rec%2B1%2F%3D",
    )
    assert parsed.data["files"][0]["name"] == "chunk-0000.wav"
    assert parsed.time == datetime(2026, 5, 6, 7, 1, 2, 345678, tzinfo=UTC)
