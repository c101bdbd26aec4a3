"""Where an event the registry cannot vouch for is kept: ``unverified/``, apart from the archive.

An unbound event (``binding``) may be a forgery, or a real recording the registry does not know
(started outside the API, or whose callbacks went to another URL). Dropping it could lose a real
recording; filing it as the recording it names could misfile another one. So its documents are
copied, once their metadata agrees with the event itself, under a folder of their own::

    unverified/{yyyy}/{mm}/{dd}/{digest}/
        chunk-{index:04d}.{wav|mp3|mp4}, chunk-{index:04d}.metadata.json, manifest.json

where the date is the event's ``recordingStartTime`` and ``digest`` a SHA-256 of what the event
names (ids and document ids), so a redelivery finds its own copy and two different forgeries
never share a folder. Nothing is deleted from ACS and no registry row is written for any id the
event names; the ``RECORDING_UNVERIFIED`` error log tells an operator (README, "What the
archiver trusts"). The manifest says why (``unverified``) and which sources ACS no longer had.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from recording_pipeline.archive.events import RecordingEvent

#: Logged at ERROR level when an event is quarantined; the infra's log alert matches it.
RECORDING_UNVERIFIED_MARKER = "RECORDING_UNVERIFIED"
QUARANTINE_ROOT = "unverified/"


def quarantine_prefix(event: RecordingEvent) -> str:
    """The quarantine folder of what ``event`` names, ending in ``/``."""
    named = {
        "callId": event.call_id,
        "serverCallId": event.server_call_id,
        "recordingId": event.recording_id,
        "documentIds": [chunk.document_id for chunk in event.chunks],
    }
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()
    day = event.recording_start_time.astimezone(UTC)
    return f"{QUARANTINE_ROOT}{day:%Y/%m/%d}/{digest}/"


def quarantine_tags(event: RecordingEvent) -> dict[str, str]:
    """The manifest's index tags: findable by ``kind`` without listing the container."""
    return {"kind": "unverified-manifest", "eventId": event.event_id}
