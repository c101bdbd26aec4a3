"""Malformed, foreign and unsafe events: rejected with their reason, once, and nothing written."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from local_runtime.media_server import SyntheticMediaServer
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import (
    InvalidEventError,
    decode_message_body,
    parse_event_message,
    parse_subject,
)
from tests.functions.archive.conftest import (
    FAST_RETRY,
    MEDIA_HOST,
    RESOURCE_ID,
    ArchiveStack,
    publish_recording,
)

Event = dict[str, Any]


def set_subject(call: str = "c1", server: str = "s1", recording: str = "r1") -> Callable:
    def mutate(event: Event) -> None:
        event["subject"] = f"/recording/call/{call}/serverCallId/{server}/recordingId/{recording}"

    return mutate


def set_path(*path: str | int, value: Any) -> Callable:
    def mutate(event: Event) -> None:
        target: Any = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def delete_path(*path: str | int) -> Callable:
    def mutate(event: Event) -> None:
        target: Any = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


CHUNKS = ("data", "recordingStorageInfo", "recordingChunks")


def set_location(chunk: int, key: str, tail: str) -> Callable:
    """Point a chunk location at ``/v1/objects/{its documentId}{tail}`` on the media host."""

    def mutate(event: Event) -> None:
        target = event["data"]["recordingStorageInfo"]["recordingChunks"][chunk]
        target[key] = f"https://{MEDIA_HOST}/v1/objects/{target['documentId']}{tail}"

    return mutate


# (case id, mutation of a valid event, substring of the reason)
EVENT_CASES: list[tuple[str, Callable, str]] = [
    ("missing-event-type", delete_path("eventType"), "eventType must be a non-empty string"),
    ("event-type-number", set_path("eventType", value=7), "eventType must be a non-empty string"),
    ("missing-id", delete_path("id"), "event.id must be a non-empty string"),
    ("id-control-char", set_path("id", value="abc\x07"), "event id"),
    ("foreign-topic", set_path("topic", value=RESOURCE_ID + "-other"), "is not the configured"),
    ("missing-topic", delete_path("topic"), "event.topic must be a non-empty string"),
    ("missing-subject", delete_path("subject"), "event.subject must be"),
    ("subject-number", set_path("subject", value=42), "event.subject must be"),
    ("subject-wrong-prefix", set_path("subject", value="/calls/x"), "does not start with"),
    (
        "subject-older-form",
        set_path("subject", value="/recording/call/c1/serverCallId/s1"),
        "older event form",
    ),
    ("call-id-slash", set_subject(call="a/b"), "callId 'a/b'"),
    ("call-id-dotdot", set_subject(call=".."), "callId '..'"),
    ("call-id-percent", set_subject(call="a%2Fb"), "callId 'a%2Fb'"),
    ("server-call-id-control", set_subject(server="s\n1"), "serverCallId"),
    ("recording-id-percent", set_subject(recording="r%2E%2E"), "recordingId 'r%2E%2E'"),
    ("recording-id-dotdot", set_subject(recording="../../etc"), "recordingId '../../etc'"),
    ("recording-id-control", set_subject(recording="r\x00x"), "recordingId"),
    ("recording-id-backslash", set_subject(recording="r\\x"), "recordingId"),
    ("recording-id-empty", set_subject(recording=""), "recordingId ''"),
    ("missing-data", delete_path("data"), "event.data must be an object"),
    ("data-list", set_path("data", value=[]), "event.data must be an object"),
    ("missing-storage-info", delete_path("data", "recordingStorageInfo"), "recordingStorageInfo"),
    ("chunks-empty", set_path(*CHUNKS, value=[]), "must be a non-empty array"),
    ("chunks-string", set_path(*CHUNKS, value="chunks"), "must be a non-empty array"),
    ("chunk-not-object", set_path(*CHUNKS, 0, value="x"), "recordingChunks[0] must be an object"),
    ("chunk-index-string", set_path(*CHUNKS, 0, "index", value="0"), "index must be a non-neg"),
    ("chunk-index-bool", set_path(*CHUNKS, 0, "index", value=False), "index must be a non-neg"),
    ("chunk-index-negative", set_path(*CHUNKS, 0, "index", value=-1), "index must be a non-neg"),
    ("chunk-index-duplicate", set_path(*CHUNKS, 1, "index", value=0), "once each"),
    ("chunk-index-gap", set_path(*CHUNKS, 1, "index", value=2), "once each"),
    ("document-id-slash", set_path(*CHUNKS, 0, "documentId", value="a/b"), "documentId 'a/b'"),
    ("missing-content-location", delete_path(*CHUNKS, 0, "contentLocation"), "contentLocation"),
    ("missing-delete-location", delete_path(*CHUNKS, 1, "deleteLocation"), "deleteLocation"),
    (
        "content-over-http",
        set_path(*CHUNKS, 0, "contentLocation", value=f"http://{MEDIA_HOST}/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-foreign-host",
        set_path(*CHUNKS, 0, "contentLocation", value="https://evil.example.com/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "metadata-suffix-trick",
        set_path(*CHUNKS, 0, "metadataLocation", value="https://asm.skype.com.evil.io/v1/o/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-userinfo",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://u:p@{MEDIA_HOST}/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-odd-port",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}:8443/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-port-out-of-range",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}:99999/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "metadata-broken-ipv6-host",
        set_path(*CHUNKS, 0, "metadataLocation", value="https://[asm.skype.com/v1/o/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-non-ascii",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}/v1/objects/\u00e9"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "content-control-char",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}/v1/o\r\nX: y"),
        "control or backslash",
    ),
    ("start-time-garbage", set_path("data", "recordingStartTime", value="yesterday"), "ISO 8601"),
    (
        "start-time-no-zone",
        set_path("data", "recordingStartTime", value="2026-03-04T10:00:00"),
        "has no time zone",
    ),
    ("duration-string", set_path("data", "recordingDurationMs", value="10"), "recordingDurationMs"),
    ("duration-negative", set_path("data", "recordingDurationMs", value=-5), "recordingDurationMs"),
    ("format-unknown", set_path("data", "recordingFormatType", value="flac"), "'flac' is not one"),
    # The SDK refuses a trailing dot; accepting it would fail later and leave a registry row.
    (
        "content-host-trailing-dot",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}./v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    (
        "metadata-host-empty-label",
        set_path(*CHUNKS, 1, "metadataLocation", value="https://a..asm.skype.com/v1/objects/d"),
        "not an https URL on an allowed ACS media host",
    ),
    # Content, metadata and delete location must be the shapes ACS sends for the chunk's document.
    (
        "content-of-another-document",
        set_path(*CHUNKS, 0, "contentLocation", value=f"https://{MEDIA_HOST}/v1/objects/other/x"),
        "is not ACS's contentLocation of the chunk's documentId",
    ),
    (
        "delete-of-another-document",
        set_path(*CHUNKS, 1, "deleteLocation", value=f"https://{MEDIA_HOST}/v1/objects/other"),
        "is not ACS's deleteLocation of the chunk's documentId",
    ),
    ("metadata-of-no-such-kind", set_location(0, "metadataLocation", "/content/nosuchkind"), "/v1"),
    ("metadata-as-content", set_location(0, "metadataLocation", "/content/audio"), "acsmetadata"),
    ("content-as-metadata", set_location(1, "contentLocation", "/content/acsmetadata"), "audio"),
    ("content-with-query", set_location(0, "contentLocation", "/content/audio?x=1"), "no query"),
    ("metadata-fragment", set_location(0, "metadataLocation", "/content/acsmetadata#x"), "query"),
    ("delete-of-content", set_location(1, "deleteLocation", "/content/audio"), "deleteLocation"),
    ("metadata-encoded-slash", set_location(0, "metadataLocation", "%2Fcontent/acsmetadata"), "/"),
    ("metadata-extra-segment", set_location(0, "metadataLocation", "/content/acsmetadata/"), "/"),
    (
        "metadata-document-elsewhere",
        set_path(*CHUNKS, 0, "metadataLocation", value=f"https://{MEDIA_HOST}/v2/x/objects/d"),
        "metadataLocation",
    ),
    # A recording id must fit a Table key once encoded ("+" becomes "%2B": 171 make 513).
    ("recording-id-too-long-for-a-key", set_subject(recording="+" * 171), "Table key"),
    (
        "ids-too-long-for-blob-names",
        set_subject(call="+" * 256, recording="+" * 170),
        "more than the 1024 of a blob name",
    ),
    ("text-not-unicode", set_path("data", "sessionEndReason", value="x\ud800"), "sessionEndReason"),
]

BODY_CASES: list[tuple[str, str, str]] = [
    ("empty-body", "   ", "message body is empty"),
    ("not-json-not-base64", "hello world!", "neither JSON nor base64"),
    ("truncated-json", '{"id": "x", ', "is not valid JSON"),
    ("base64-of-garbage", base64.b64encode(b"\xff\xfe not json").decode(), "neither JSON nor"),
    ("base64-of-bad-json", base64.b64encode(b"{nope}").decode(), "is not valid JSON"),
    ("json-array-of-two", "[{}, {}]", "one event per message"),
    ("json-array-of-number", "[1]", "event must be a JSON object, got int"),
    ("deeply-nested", "[" * 30_000 + "]" * 30_000, "nests too deeply"),
    ("nested-past-the-limit", "[" * 100 + "]" * 100, "deeper than 64"),
    ("5000-digit-integer", '{"id": ' + "7" * 5000 + "}", "cannot be read"),
    ("base64-of-deep-nesting", base64.b64encode(b"[" * 3000 + b"]" * 3000).decode(), "nests"),
    ("lone-surrogate", '{"id": "\\ud800"}', "not valid Unicode at id"),
]


@pytest.fixture
def valid_event(media_server: SyntheticMediaServer) -> Event:
    return publish_recording(media_server, [1000, 1000]).event()


def assert_rejected_and_nothing_written(
    stack: ArchiveStack, media_server: SyntheticMediaServer, body: str, reason: str
) -> None:
    outcome = handle_event_message(
        body, dequeue_count=1, message_id="msg-1", settings=stack.settings, retry=FAST_RETRY
    )
    assert outcome is ArchiveOutcome.REJECTED
    envelopes = stack.poison_envelopes()
    assert len(envelopes) == 1
    assert reason in envelopes[0]["reason"]
    assert envelopes[0]["messageId"] == "msg-1"
    assert envelopes[0]["body"] == body
    assert envelopes[0]["receivedAt"].endswith("+00:00")
    assert stack.blob_names() == []
    assert [e for e in stack.entities() if e["PartitionKey"] != "poison"] == []
    assert media_server.requests == []


@pytest.mark.parametrize(
    ("mutate", "reason"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES]
)
def test_malformed_event_is_poisoned_with_its_reason(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    valid_event: Event,
    mutate: Callable,
    reason: str,
) -> None:
    event = copy.deepcopy(valid_event)
    mutate(event)
    body = base64.b64encode(json.dumps(event).encode()).decode()
    assert_rejected_and_nothing_written(stack, media_server, body, reason)


@pytest.mark.parametrize(
    ("body", "reason"), [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES]
)
def test_undecodable_body_is_poisoned_with_its_reason(
    stack: ArchiveStack, media_server: SyntheticMediaServer, body: str, reason: str
) -> None:
    assert_rejected_and_nothing_written(stack, media_server, body, reason)


def test_redelivered_malformed_message_is_poisoned_once(
    stack: ArchiveStack, media_server: SyntheticMediaServer, valid_event: Event
) -> None:
    valid_event["topic"] = "/subscriptions/x/someone-else"
    body = json.dumps(valid_event)
    for attempt in (1, 2, 3):
        outcome = handle_event_message(
            body, dequeue_count=attempt, message_id="same-id", settings=stack.settings
        )
        assert outcome is ArchiveOutcome.REJECTED
    assert len(stack.poison_envelopes()) == 1
    handle_event_message(body, message_id="other-id", settings=stack.settings)
    assert [e["messageId"] for e in stack.poison_envelopes()] == ["same-id", "other-id"]


def test_other_event_types_are_acknowledged_not_poisoned(
    stack: ArchiveStack, media_server: SyntheticMediaServer, valid_event: Event
) -> None:
    valid_event["eventType"] = "Microsoft.Communication.CallStarted"
    outcome = handle_event_message(json.dumps(valid_event), settings=stack.settings)
    assert outcome is ArchiveOutcome.IGNORED
    assert stack.poison_envelopes() == []
    assert stack.blob_names() == []
    assert media_server.requests == []


def test_json_base64_array_and_cloud_event_forms_parse_to_the_same_event(
    valid_event: Event,
) -> None:
    text = json.dumps(valid_event)
    cloud = {
        "specversion": "1.0",
        "type": valid_event["eventType"],
        "source": valid_event["topic"].upper(),
        "subject": valid_event["subject"],
        "id": valid_event["id"],
        "time": valid_event["eventTime"],
        "data": valid_event["data"],
    }
    bodies = [
        text,
        base64.b64encode(text.encode()).decode(),
        "[" + text + "]",
        text.encode(),
        json.dumps(cloud),
    ]
    parsed = [parse_event_message(body, resource_id=RESOURCE_ID) for body in bodies]
    assert all(event == parsed[0] for event in parsed[:4])
    # The topic is compared case-insensitively and kept as sent.
    assert dataclasses.replace(parsed[4], topic=valid_event["topic"]) == parsed[0]
    assert [chunk.index for chunk in parsed[0].chunks] == [0, 1]


@pytest.mark.parametrize("recording_id", ["eyJQ+/abc/def==", "/T/r+//x/", "/", "a/recordingId/b"])
def test_recording_id_is_everything_after_its_marker(recording_id: str) -> None:
    # Standard base64 may start or end with "/" or hold "//"; none of it is a path here.
    call, server, recording = parse_subject(
        f"/recording/call/9f1c-aa/serverCallId/aHR0cHM6_-x/recordingId/{recording_id}"
    )
    assert (call, server, recording) == ("9f1c-aa", "aHR0cHM6_-x", recording_id)


def test_chunks_are_returned_in_index_order(valid_event: Event) -> None:
    chunks = valid_event["data"]["recordingStorageInfo"]["recordingChunks"]
    chunks.reverse()
    event = parse_event_message(json.dumps(valid_event), resource_id=RESOURCE_ID.lower())
    assert [chunk.index for chunk in event.chunks] == [0, 1]
    assert event.chunks[0].document_id == chunks[1]["documentId"]


def test_bytes_that_are_not_utf8_are_poisoned_with_their_reason(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    body = b'{"id": "\xff\xfe"}'
    outcome = handle_event_message(body, message_id="msg-1", settings=stack.settings)
    assert outcome is ArchiveOutcome.REJECTED
    assert [e["reason"] for e in stack.poison_envelopes()] == ["message body is not UTF-8"]
    assert stack.entities()[0]["PartitionKey"] == "poison"
    assert len(stack.entities()) == 1


def test_decode_rejects_bytes_that_are_not_utf8() -> None:
    with pytest.raises(InvalidEventError, match="not UTF-8"):
        parse_event_message(b"\xff\xfe{}", resource_id=RESOURCE_ID)
    assert decode_message_body(b'{"a": 1}') == {"a": 1}


def test_a_reason_and_a_body_full_of_xml_characters_still_fit_the_poison_queue(
    stack: ArchiveStack, media_server: SyntheticMediaServer, valid_event: Event
) -> None:
    """The reason quotes the topic; the queue takes the envelope as XML, where ``<`` and ``&``
    grow: neither may push it over a queue message's 64 KiB (found by the fuzz layer)."""
    valid_event["topic"] = "<&>" * 12_000
    body = json.dumps(valid_event)
    outcome = handle_event_message(body, message_id="msg-xml", settings=stack.settings)
    assert outcome is ArchiveOutcome.REJECTED
    (envelope,) = stack.poison_envelopes()
    assert envelope["reason"].startswith("topic '<&><&>")
    assert len(envelope["reason"]) <= 2000
    assert envelope["bodyTruncated"] is True
    assert body.startswith(envelope["body"])
