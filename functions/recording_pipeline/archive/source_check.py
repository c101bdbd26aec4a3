"""Check what ACS serves against the event before anything is committed or deleted.

Each chunk's metadata document says what it belongs to (``callId``, ``chunkDocumentId``,
``chunkIndex``, in ACS's metadata schema); it is read first, for every chunk, and must agree with
the event's call and chunk before the registry is touched, a blob committed or anything deleted
from ACS. For an event bound to the registry (``binding``), the event's call id is the registry's,
so the documents are proven to be of the recording's call; the event parser has already made
sure each chunk's locations are the shapes ACS sends for that same document.

Metadata that cannot be checked rejects the event: ACS answers 404/410 for it, it is too big, it
is not a JSON object. Nothing is then written or deleted, and the recording is not marked lost:
a 404 here proves nothing about the recording the event names (a forger can name any document),
so losing a recording is left to evidence the archiver verified (a checked chunk whose content
is gone) or to the reconciler's retention-window rule.

What this cannot catch: the metadata does not carry the recording id, so for two recordings of
the same call an event naming one and pointing at the other's documents agrees on every field.
"""

from __future__ import annotations

from typing import Any

from azure.communication.callautomation import CallAutomationClient

from recording_pipeline.archive.chunk_metadata import MAX_METADATA_BYTES
from recording_pipeline.archive.events import ChunkRef, InvalidEventError, RecordingEvent
from recording_pipeline.archive.media_source import MediaSource, RetrySchedule, SourceGoneError
from recording_pipeline.call_ids import same_call_id
from recording_pipeline.input_rules import UnreadableJsonError, load_json


class SourceMismatchError(InvalidEventError):
    """A chunk's metadata contradicts the event: it is rejected (poisoned) with this reason."""


def check_sources(
    event: RecordingEvent, media: CallAutomationClient, *, retry: RetrySchedule
) -> None:
    """Read every chunk's metadata and compare it with the event.

    :raises SourceMismatchError: on the first chunk that does not belong to the event.
    :raises Exception: what reading the metadata raises (retried like any copy failure).
    """
    for chunk in event.chunks:
        source = MediaSource(media, chunk.metadata_location, retry=retry)
        problem = _chunk_problem(event, chunk, source)
        if problem is not None:
            raise SourceMismatchError(
                f"chunk {chunk.index} (document {chunk.document_id}): {problem}; "
                "nothing was archived or deleted"
            )


def _chunk_problem(event: RecordingEvent, chunk: ChunkRef, source: MediaSource) -> str | None:
    try:
        raw = source.read_range(0, MAX_METADATA_BYTES + 1)
    except SourceGoneError as gone:
        return f"ACS answers {gone.status} for its metadata, so it cannot be checked"
    if len(raw) > MAX_METADATA_BYTES:
        return f"its metadata is over {MAX_METADATA_BYTES} bytes and cannot be checked"
    try:
        document = load_json(raw)
    except UnreadableJsonError as error:
        return f"its metadata {error.reason} and cannot be checked"
    if not isinstance(document, dict):
        return "its metadata is not a JSON object and cannot be checked"
    return _mismatch(document, event, chunk)


def _mismatch(document: dict[str, Any], event: RecordingEvent, chunk: ChunkRef) -> str | None:
    expected: dict[str, Any] = {
        "callId": event.call_id,
        "chunkDocumentId": chunk.document_id,
        "chunkIndex": chunk.index,
    }
    wrong = [
        f"{name} is {_shown(document.get(name))}, the event says {value!r}"
        for name, value in expected.items()
        if not _same(name, document.get(name), value)
    ]
    return None if not wrong else "its metadata does not match the event: " + "; ".join(wrong)


def _same(name: str, found: Any, expected: Any) -> bool:
    if type(found) is not type(expected):
        return False
    return same_call_id(found, expected) if name == "callId" else bool(found == expected)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
