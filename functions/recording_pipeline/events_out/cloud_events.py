"""The CloudEvents this pipeline publishes, built from what the registry and the manifest hold.

Pure functions: no I/O, so each event is the same whenever it is built (a redelivery, the
reconciler's retry) and a consumer that sees it twice sees the same event twice.

- ``type``: ``AcsCallRecording.`` + one of :class:`EventName`.
- ``source``: the ACS resource id (``ACS_RESOURCE_ID``): the recordings are that resource's, and
  it is the same for every instance of one deployment.
- ``subject``: ``/recordings/{encode_id(recordingId)}`` (``ids.encode_id``: ``/``, ``+`` and
  ``=`` of a recording id cannot add path segments, so subject filters work on it).
- ``id``: a UUIDv5 of the type and the recording id (:func:`event_id`): one id per recording
  and event type, whatever publishes it and however often, so ``source`` + ``id`` identifies
  the event and a repeat (at-least-once delivery) can be dropped.
- ``time``: when the state change happened, in UTC, written as the SDK writes it (it parses
  and reformats ``time``: at least 3 fractional digits, trailing zeros dropped, ``Z``), so the
  event on the wire is the event built here; ``datacontenttype``: ``application/json``.
- ``data``: the ids, the format, and per type what happened (docs/events/*.schema.json). Blob
  URLs are plain URLs of the archive (no SAS, no key): reading them takes a role on the
  archive, or the API's link route ``GET /api/recordings/{id}/archive/files/{name}``.
  ``reason`` (lost, failed, overdue) is the registry's text, which can be an exception's:
  its URLs go without their query and it is cut at :data:`MAX_REASON_CHARS`
  (:func:`public_reason`); the logs keep the whole text.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recording_pipeline.failures import classify
from recording_pipeline.ids import encode_id

SPEC_VERSION = "1.0"
TYPE_PREFIX = "AcsCallRecording."
DATA_CONTENT_TYPE = "application/json"
#: ``data.schemaVersion``: raised when a field changes meaning or goes away.
DATA_SCHEMA_VERSION = 1
#: Namespace of the event ids: ``uuid5(EVENT_ID_NAMESPACE, f"{type}/{recordingId}")``.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:acs-call-recording:events")
#: Event Grid refuses an event (and a request) over 1 MB with 413. "1 MB" is read as 1,000,000
#: bytes, the smaller of its two readings, so an event built here is accepted either way.
MAX_EVENT_BYTES = 1_000_000
#: Characters of ``data.reason`` at most: a reason is an exception's text (a response body
#: included), said to third parties; the first lines tell what happened, the logs keep the rest.
MAX_REASON_CHARS = 1000
#: Marks a reason cut at :data:`MAX_REASON_CHARS` (counted in it).
REASON_CUT = " [...]"
#: A URL's query (``?`` up to whitespace or a quote): a SAS, a signature or a token may be in it.
_URL_QUERY = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s\"'<>]*")


class EventName(enum.StrEnum):
    """The event types without :data:`TYPE_PREFIX`; each announces one ``ArchiveStatus``."""

    ARCHIVED = "RecordingArchived"
    LOST = "RecordingLost"
    FAILED = "RecordingFailed"
    OVERDUE = "RecordingOverdue"
    ERASED = "RecordingErased"

    @property
    def type(self) -> str:
        return TYPE_PREFIX + self.value

    @property
    def status(self) -> str:
        """The registry's ``ArchiveStatus`` this event announces (``archived``, ``lost``, ...)."""
        return self.value.removeprefix("Recording").lower()


def event_id(name: EventName, recording_id: str) -> str:
    """The one id of this recording's ``name`` event (a consumer can compute it too)."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{name.type}/{recording_id}"))


def subject(recording_id: str) -> str:
    return f"/recordings/{encode_id(recording_id)}"


@dataclass(frozen=True)
class RecordingFacts:
    """What the registry knows of a recording (None: not known, e.g. not started by this API)."""

    recording_id: str
    server_call_id: str | None = None
    call_id: str | None = None
    content: str | None = None
    channel: str | None = None
    format: str | None = None


def cloud_event(
    name: EventName, recording_id: str, *, source: str, time: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The CloudEvent (JSON format) as a dict, the form the SDK sends unchanged."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id(name, recording_id),
        "source": source,
        "type": name.type,
        "subject": subject(recording_id),
        "time": utc_time(time),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": data,
    }


def archived_event(
    manifest: Mapping[str, Any], *, source: str, blob_url: Callable[[str], str]
) -> dict[str, Any]:
    """``RecordingArchived`` from the stored manifest; ``blob_url`` names a blob's URL.

    The file list is left out (``filesTruncated``) when the event would not fit
    :data:`MAX_EVENT_BYTES`; the manifest (its URL, or the API's manifest route) lists them.
    """
    prefix = str(manifest["blobPrefix"])
    files = [entry for chunk in manifest["chunks"] for entry in _chunk_files(chunk, prefix)]
    data: dict[str, Any] = {
        "schemaVersion": DATA_SCHEMA_VERSION,
        **_ids(
            RecordingFacts(
                recording_id=manifest["recordingId"],
                server_call_id=manifest.get("serverCallId"),
                call_id=manifest.get("callId"),
                content=manifest.get("contentType"),
                channel=manifest.get("channelType"),
                format=manifest.get("formatType"),
            )
        ),
        "recordingStartTime": manifest.get("recordingStartTime"),
        "recordingDurationMs": manifest.get("recordingDurationMs"),
        "sessionEndReason": manifest.get("sessionEndReason"),
        "archivedAt": manifest["archivedAt"],
        "participants": [
            {"participantId": p["participantId"], "channels": list(p["channels"])}
            for p in manifest.get("participants") or []
        ],
        "chunkCount": len(manifest["chunks"]),
        "totalBytes": manifest["totalBytes"],
        "manifest": {"name": "manifest.json", "url": _plain(blob_url(prefix + "manifest.json"))},
        "files": [{**entry, "url": _plain(blob_url(prefix + entry["name"]))} for entry in files],
        "filesTruncated": False,
    }
    event = cloud_event(
        EventName.ARCHIVED,
        manifest["recordingId"],
        source=source,
        time=manifest["archivedAt"],
        data=data,
    )
    if encoded_size(event) > MAX_EVENT_BYTES:
        event["data"] = {**data, "files": [], "filesTruncated": True}
    return event


def _chunk_files(chunk: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The content file and, when it was archived, the metadata file of one chunk."""
    files = [
        {
            "name": str(chunk["contentBlob"]).removeprefix(prefix),
            "kind": "content",
            "chunkIndex": chunk["index"],
            "sizeBytes": chunk["contentBytes"],
            "md5": chunk["contentMd5"],
            "startTime": chunk.get("chunkStartTime"),
            "durationMs": chunk.get("chunkDurationMs"),
        }
    ]
    if chunk.get("metadataBlob"):
        files.append(
            {
                "name": str(chunk["metadataBlob"]).removeprefix(prefix),
                "kind": "metadata",
                "chunkIndex": chunk["index"],
                "sizeBytes": chunk["metadataBytes"],
                "md5": chunk["metadataMd5"],
            }
        )
    return files


def status_event(
    name: EventName,
    facts: RecordingFacts,
    *,
    source: str,
    occurred_at: str,
    reason: str | None = None,
    stopped_at: str | None = None,
) -> dict[str, Any]:
    """``RecordingLost``, ``...Failed``, ``...Overdue`` or ``...Erased`` from the registry's facts.

    Lost, failed and overdue carry ``reason``; failed says whether a retry can help
    (``retryable``: an outage, which the reconciler replays, as opposed to a refusal); overdue
    carries the stop time. Erased carries ids and the time only: no participant of an erased
    recording is named again.
    """
    if name is EventName.ARCHIVED:
        raise ValueError("RecordingArchived is built from the manifest (archived_event)")
    data: dict[str, Any] = {
        "schemaVersion": DATA_SCHEMA_VERSION,
        **_ids(facts),
        f"{name.status}At": occurred_at,
    }
    if name is not EventName.ERASED:
        data["reason"] = public_reason(reason or "")
    if name is EventName.FAILED:
        data["retryable"] = classify(reason or "") == "transient"
    if name is EventName.OVERDUE:
        data["stoppedAt"] = stopped_at
    return cloud_event(name, facts.recording_id, source=source, time=occurred_at, data=data)


def _ids(facts: RecordingFacts) -> dict[str, Any]:
    return {
        "recordingId": facts.recording_id,
        "serverCallId": facts.server_call_id,
        "callId": facts.call_id,
        "format": {"content": facts.content, "channel": facts.channel, "format": facts.format},
    }


def utc_time(text: str) -> str:
    """An ISO 8601 time with a zone as the SDK sends it: UTC, ``Z``, at least 3 fractional
    digits and no trailing zeros beyond them (``07:00:00.000Z``, ``07:00:00.12345Z``)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0").ljust(3, "0")
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction}Z"


def _plain(url: str) -> str:
    """A blob URL without any query: whatever signed it, no SAS leaves in an event."""
    return url.split("?", 1)[0]


def public_reason(reason: str) -> str:
    """``reason`` as an event may carry it: every URL without its query (as :func:`_plain`
    does for the files' URLs), at most :data:`MAX_REASON_CHARS` characters."""
    text = _URL_QUERY.sub(lambda match: match.group("url"), reason)
    if len(text) <= MAX_REASON_CHARS:
        return text
    return text[: MAX_REASON_CHARS - len(REASON_CUT)] + REASON_CUT


def encoded_size(event: Mapping[str, Any]) -> int:
    """Bytes of the event as the SDK sends it (``json.dumps`` defaults: ASCII, ", " and ": ")."""
    return len(json.dumps(event).encode())
