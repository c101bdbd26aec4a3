"""Parse and validate a ``RecordingFileStatusUpdated`` queue message before anything is fetched.

The queue is filled by Event Grid, but anyone with send rights on the queue can put a message
there, so the archiver trusts nothing in it: the topic must be our ACS resource, the ids must be
made of the characters ACS uses, and every URL must be https on an ACS media host (the only
hosts the Call Automation SDK sends credentials to). A message that fails here can never succeed
on retry, so the caller poisons it with :attr:`InvalidEventError.reason` and acknowledges it.

Accepted encodings: the Event Grid schema as JSON text, base64 of that JSON (Event Grid's
storage-queue destination has written both over the years), a one-element JSON array of it, and
the CloudEvents 1.0 schema (``type``/``source``/``subject``).

Every parser failure (deep nesting, an integer of thousands of digits, bytes that are not UTF-8,
...) and any text that is not valid Unicode is such a failure too, named in the reason. Ids must
also fit where they go: the recording id into a Table key and, with the call id, the blob names
of the recording's folder (``input_rules``). Each chunk's three locations must have the exact
shapes ACS sends for the chunk's ``documentId`` (:data:`LOCATION_SHAPES`): metadata
``/v1/objects/{documentId}/content/acsmetadata``, content ``.../content/audio`` or
``.../content/video``, delete ``/v1/objects/{documentId}``, with no query or fragment. So the three
are of one document, the metadata URL really is that document's metadata (a variant such as
``.../content/nosuchkind`` that ACS answers 404 could not be checked), and the document is the one
the archiver checks against the registry before it commits anything (``source_check``).

Subjects have the form
``/recording/call/{callId}/serverCallId/{serverCallId}/recordingId/{recordingId}``.
The recording id is standard base64 and may itself contain ``/``, so it is everything after the
``/recordingId/`` marker. The older subject form without ``/recordingId/`` is rejected: nothing in
the event or the chunk metadata carries the recording id, and keying the archive by anything
else would split one recording across two registry rows. The rejected event stays in the poison
queue with that reason, so it can be replayed by hand.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

from recording_pipeline.archive.layout import longest_file_name, recording_prefix
from recording_pipeline.hosts import is_acs_media_url
from recording_pipeline.input_rules import (
    UnreadableJsonError,
    blob_name_problem,
    invalid_text_path,
    key_id_problem,
    load_json,
)

RECORDING_FILE_STATUS_UPDATED = "Microsoft.Communication.RecordingFileStatusUpdated"
MAX_CHUNKS = 1000
CONTENT_TYPES = ("audio", "audioVideo")
CHANNEL_TYPES = ("mixed", "unmixed")
FORMAT_TYPES = ("wav", "mp3", "mp4")

# Characters each id kind may contain. They are the alphabets ACS uses (GUIDs, base64url server
# call ids, standard base64 recording ids, document ids like ``0-eus-d2-3cca…``). ``.``, ``%``,
# ``\`` and control characters never occur, so ``..`` and percent tricks are refused up front;
# paths and keys are still built with ``ids.encode_id`` whatever passes here.
_CALL_ID = re.compile(r"[A-Za-z0-9_=+-]{1,256}")
_SERVER_CALL_ID = re.compile(r"[A-Za-z0-9_=+-]{1,1024}")
_RECORDING_ID = re.compile(r"[A-Za-z0-9_=+/-]{1,1024}")
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9_=+-]{1,256}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:{}-]{1,256}")

#: The path of each chunk location as ACS sends it, after the ``documentId``:
#: ``/v1/objects/{documentId}`` then one of these tails.
LOCATION_SHAPES: dict[str, tuple[str, ...]] = {
    "metadataLocation": ("/content/acsmetadata",),
    "contentLocation": ("/content/audio", "/content/video"),
    "deleteLocation": ("",),
}
_OBJECTS_PATH = "/v1/objects/"

_SUBJECT_PREFIX = "/recording/call/"
_SERVER_CALL_MARKER = "/serverCallId/"
_RECORDING_MARKER = "/recordingId/"


class InvalidEventError(ValueError):
    """The message can never be archived; ``reason`` says why, for the poison envelope."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedEventTypeError(Exception):
    """A well-formed event of another type: acknowledged and logged, never poisoned."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"event type {event_type!r} is not archived")


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a recording as the event announces it."""

    index: int
    document_id: str
    content_location: str
    metadata_location: str
    delete_location: str
    end_reason: str | None


@dataclass(frozen=True)
class RecordingEvent:
    """A validated ``RecordingFileStatusUpdated`` event; chunks are sorted by index."""

    event_id: str
    topic: str
    call_id: str
    server_call_id: str
    recording_id: str
    recording_start_time: datetime
    recording_duration_ms: int
    session_end_reason: str | None
    content_type: str | None
    channel_type: str | None
    format_type: str | None
    chunks: tuple[ChunkRef, ...]


def decode_message_body(body: str | bytes) -> Any:
    """JSON text, or base64 of JSON text, to a Python value whose text is all valid Unicode.

    :raises InvalidEventError: when the body is neither, or any parser fails on it.
    """
    try:
        text = body.decode("utf-8", errors="strict") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise InvalidEventError("message body is not UTF-8") from None
    text = text.strip()
    if not text:
        raise InvalidEventError("message body is empty")
    if text[0] in "{[":
        return _json_loads(text, "message body")
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidEventError("message body is neither JSON nor base64 of JSON") from None
    return _json_loads(decoded.strip(), "base64-decoded message body")


def parse_event_message(body: str | bytes, *, resource_id: str) -> RecordingEvent:
    """Decode and validate one queue message.

    :raises InvalidEventError: malformed, foreign or unsafe; never retry it.
    :raises UnsupportedEventTypeError: a valid event of another type.
    """
    event = _single_event(decode_message_body(body))
    event_type = _event_type(event)
    if event_type != RECORDING_FILE_STATUS_UPDATED:
        raise UnsupportedEventTypeError(event_type)
    return _recording_event(event, resource_id)


def _json_loads(text: str, what: str) -> Any:
    try:
        value = load_json(text)
    except UnreadableJsonError as error:
        raise InvalidEventError(f"{what} {error.reason}") from None
    bad_text = invalid_text_path(value)
    if bad_text is not None:
        where = bad_text or "the document"
        raise InvalidEventError(f"{what} holds text that is not valid Unicode at {where}")
    return value


def _single_event(payload: Any) -> dict[str, Any]:
    if isinstance(payload, list):
        if len(payload) != 1:
            raise InvalidEventError(
                f"expected one event per message, got an array of {len(payload)}"
            )
        payload = payload[0]
    if not isinstance(payload, dict):
        raise InvalidEventError(f"event must be a JSON object, got {type(payload).__name__}")
    return payload


def _event_type(event: dict[str, Any]) -> str:
    """Event Grid schema uses ``eventType``; CloudEvents uses ``type``."""
    key = "eventType" if "eventType" in event or "specversion" not in event else "type"
    return _string(event, key, "event")


def _recording_event(event: dict[str, Any], resource_id: str) -> RecordingEvent:
    cloud_event = "specversion" in event and "eventType" not in event
    topic = _string(event, "source" if cloud_event else "topic", "event")
    if topic.rstrip("/").lower() != resource_id.rstrip("/").lower():
        raise InvalidEventError(f"topic {topic!r} is not the configured ACS resource")
    event_id = _string(event, "id", "event")
    if not _EVENT_ID.fullmatch(event_id):
        raise InvalidEventError(f"event id {event_id!r} has characters outside {_EVENT_ID.pattern}")
    call_id, server_call_id, recording_id = parse_subject(_string(event, "subject", "event"))
    data = _object(event, "data", "event")
    storage_info = _object(data, "recordingStorageInfo", "data")
    chunks = _chunks(storage_info.get("recordingChunks"))
    start_time = _timestamp(data, "recordingStartTime")
    _check_blob_names(call_id, recording_id, start_time, len(chunks))
    return RecordingEvent(
        event_id=event_id,
        topic=topic,
        call_id=call_id,
        server_call_id=server_call_id,
        recording_id=recording_id,
        recording_start_time=start_time,
        recording_duration_ms=_non_negative_int(data, "recordingDurationMs", "data"),
        session_end_reason=_optional_string(data, "sessionEndReason", "data"),
        content_type=_optional_choice(data, "recordingContentType", CONTENT_TYPES),
        channel_type=_optional_choice(data, "recordingChannelType", CHANNEL_TYPES),
        format_type=_optional_choice(data, "recordingFormatType", FORMAT_TYPES),
        chunks=chunks,
    )


def parse_subject(subject: str) -> tuple[str, str, str]:
    """``(callId, serverCallId, recordingId)`` from an event subject.

    :raises InvalidEventError: if the subject is not of the documented form or an id is unsafe.
    """
    if not subject.startswith(_SUBJECT_PREFIX):
        raise InvalidEventError(f"subject {subject!r} does not start with {_SUBJECT_PREFIX!r}")
    rest = subject[len(_SUBJECT_PREFIX) :]
    call_id, found_server, rest = rest.partition(_SERVER_CALL_MARKER)
    if not found_server:
        raise InvalidEventError(f"subject {subject!r} has no {_SERVER_CALL_MARKER!r} segment")
    server_call_id, found_recording, recording_id = rest.partition(_RECORDING_MARKER)
    if not found_recording:
        raise InvalidEventError(
            f"subject {subject!r} has no {_RECORDING_MARKER!r} segment (older event form): "
            "the recording id is needed to key the archive"
        )
    _check_id("callId", call_id, _CALL_ID)
    _check_id("serverCallId", server_call_id, _SERVER_CALL_ID)
    _check_id("recordingId", recording_id, _RECORDING_ID)
    too_long = key_id_problem(recording_id)
    if too_long is not None:
        raise InvalidEventError(f"recordingId {recording_id[:80]!r}... {too_long}")
    return call_id, server_call_id, recording_id


def _check_blob_names(call_id: str, recording_id: str, start_time: datetime, chunks: int) -> None:
    """The recording's folder and its longest file name must make a valid blob name."""
    longest = recording_prefix(call_id, recording_id, start_time) + longest_file_name(chunks)
    problem = blob_name_problem(longest)
    if problem is not None:
        raise InvalidEventError(
            f"callId and recordingId are too long for the archive: the blob name {problem}"
        )


def _check_id(name: str, value: str, pattern: re.Pattern[str]) -> None:
    if not pattern.fullmatch(value):
        raise InvalidEventError(
            f"{name} {value!r} is empty, too long or has characters outside {pattern.pattern}"
        )


def _chunks(raw: Any) -> tuple[ChunkRef, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidEventError(
            "data.recordingStorageInfo.recordingChunks must be a non-empty array"
        )
    if len(raw) > MAX_CHUNKS:
        raise InvalidEventError(f"recordingChunks has {len(raw)} entries (at most {MAX_CHUNKS})")
    chunks = sorted((_chunk(item, position) for position, item in enumerate(raw)), key=_index)
    indexes = [chunk.index for chunk in chunks]
    if indexes != list(range(len(chunks))):
        raise InvalidEventError(
            f"chunk indexes must be 0..{len(chunks) - 1} once each, got {indexes}"
        )
    return tuple(chunks)


def _index(chunk: ChunkRef) -> int:
    return chunk.index


def _chunk(item: Any, position: int) -> ChunkRef:
    where = f"recordingChunks[{position}]"
    if not isinstance(item, dict):
        raise InvalidEventError(f"{where} must be an object")
    document_id = _string(item, "documentId", where)
    _check_id(f"{where}.documentId", document_id, _DOCUMENT_ID)
    return ChunkRef(
        index=_non_negative_int(item, "index", where),
        document_id=document_id,
        content_location=_media_url(item, "contentLocation", where, document_id),
        metadata_location=_media_url(item, "metadataLocation", where, document_id),
        delete_location=_media_url(item, "deleteLocation", where, document_id),
        end_reason=_optional_string(item, "endReason", where),
    )


def _media_url(item: dict[str, Any], key: str, where: str, document_id: str) -> str:
    url = _string(item, key, where)
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url) or "\\" in url:
        raise InvalidEventError(
            f"{where}.{key} contains whitespace, control or backslash characters"
        )
    if not is_acs_media_url(url):
        raise InvalidEventError(
            f"{where}.{key} {url!r} is not an https URL on an allowed ACS media host"
        )
    parsed = urlparse(url)
    # Segment by segment, so an encoded ``%2F`` cannot fake a segment boundary.
    segments = [unquote(segment) for segment in parsed.path.split("/")]
    shapes = [f"{_OBJECTS_PATH}{document_id}{tail}" for tail in LOCATION_SHAPES[key]]
    if segments not in [shape.split("/") for shape in shapes] or (
        parsed.query or parsed.fragment or parsed.params
    ):
        raise InvalidEventError(
            f"{where}.{key} {url!r} is not ACS's {key} of the chunk's documentId "
            f"{document_id!r}: its path must be {' or '.join(shapes)}, with no query or fragment"
        )
    return url


def _object(container: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise InvalidEventError(f"{where}.{key} must be an object")
    return value


def _string(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{where}.{key} must be a non-empty string")
    return value


def _optional_string(container: dict[str, Any], key: str, where: str) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEventError(f"{where}.{key} must be a string")
    return value


def _optional_choice(data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str | None:
    value = _optional_string(data, key, "data")
    if value is not None and value not in choices:
        raise InvalidEventError(f"data.{key} {value!r} is not one of {', '.join(choices)}")
    return value


def _non_negative_int(container: dict[str, Any], key: str, where: str) -> int:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEventError(f"{where}.{key} must be a non-negative integer")
    return value


def _timestamp(data: dict[str, Any], key: str) -> datetime:
    raw = _string(data, key, "data")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidEventError(f"data.{key} {raw!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise InvalidEventError(f"data.{key} {raw!r} has no time zone")
    return moment
