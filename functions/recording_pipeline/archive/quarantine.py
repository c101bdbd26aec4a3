"""Where an event the registry cannot vouch for is kept: ``unverified/``, apart from the archive.

An unbound event (``binding``) may be a forgery, or a real recording the registry does not know
(started outside the API, or whose callbacks went to another URL). Dropping it could lose a real
recording; filing it as the recording it names could misfile another one. So its documents are
copied, once their metadata agrees with the event itself, under a folder of their own::

    unverified/{digest}/
        chunk-{index:04d}.{wav|mp3|mp4}, chunk-{index:04d}.metadata.json, manifest.json

where ``digest`` is a SHA-256 of the chunks' document ids only: the one thing a forger cannot
multiply (each is a real ACS document whose metadata names it). Any number of events naming the
same documents, whatever ids, times or formats they claim, make one copy; a redelivery finds
its own. The manifest says why the first one was not bound (``unverified``), which sources ACS
no longer had, and lists every event that named the documents (``namingEvents``: event id, the
ids it named, why it was not bound; at most :data:`MAX_NAMING_EVENTS`, the rest counted in
``namingEventsOmitted``). Nothing is deleted from ACS and no registry row is written for any id
an event names; the ``RECORDING_UNVERIFIED`` error log tells an operator (README, "What the
archiver trusts").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import ContainerClient, ContentSettings

from recording_pipeline.archive.events import RecordingEvent

#: Logged at ERROR level when an event is quarantined; the infra's log alert matches it.
RECORDING_UNVERIFIED_MARKER = "RECORDING_UNVERIFIED"
QUARANTINE_ROOT = "unverified/"
#: Events a quarantine manifest lists by name; more are only counted (a flood of forged events
#: naming one document must not grow its manifest without bound).
MAX_NAMING_EVENTS = 100
#: Attempts at adding an event to a manifest that concurrent events are updating too.
NOTE_ATTEMPTS = 5


def quarantine_prefix(event: RecordingEvent) -> str:
    """The quarantine folder of the documents ``event`` names, ending in ``/``."""
    documents = sorted(chunk.document_id for chunk in event.chunks)
    digest = hashlib.sha256(json.dumps(documents).encode()).hexdigest()
    return f"{QUARANTINE_ROOT}{digest}/"


def naming_event(event: RecordingEvent, problem: str) -> dict[str, str]:
    """What the manifest says of one event that named the documents."""
    return {
        "eventId": event.event_id,
        "callId": event.call_id,
        "serverCallId": event.server_call_id,
        "recordingId": event.recording_id,
        "unverified": problem,
    }


def note_naming_event(
    container: ContainerClient,
    manifest_name: str,
    entry: dict[str, str],
    tags_of: Callable[[str], dict[str, str]],
) -> None:
    """Add ``entry`` to the manifest's ``namingEvents`` (once per event id), rewriting the
    manifest only if nobody changed it since it was read (ETag), so no entry is lost; its index
    tags stay those of the event that created it (``tags_of`` its event id).

    :raises ResourceModifiedError: when concurrent events won :data:`NOTE_ATTEMPTS` times in a
        row (the host redelivers the event, which then adds itself).
    """
    for attempt in range(NOTE_ATTEMPTS):
        downloaded = container.download_blob(manifest_name)
        manifest: dict[str, Any] = json.loads(downloaded.readall())
        updated = _with_naming_event(manifest, entry)
        if updated is None:
            return
        try:
            container.upload_blob(
                manifest_name,
                json.dumps(updated, indent=2, sort_keys=True).encode(),
                overwrite=True,
                etag=downloaded.properties.etag,
                match_condition=MatchConditions.IfNotModified,
                content_settings=ContentSettings(content_type="application/json"),
                tags=tags_of(str(manifest.get("eventId") or "")),
            )
            return
        except ResourceModifiedError:
            if attempt == NOTE_ATTEMPTS - 1:
                raise


def _with_naming_event(manifest: dict[str, Any], entry: dict[str, str]) -> dict[str, Any] | None:
    """The manifest with ``entry`` listed or counted; None when it lists the event already."""
    named = [e for e in manifest.get("namingEvents") or [] if isinstance(e, dict)]
    if any(e.get("eventId") == entry["eventId"] for e in named):
        return None
    if len(named) < MAX_NAMING_EVENTS:
        return {**manifest, "namingEvents": [*named, entry]}
    return {**manifest, "namingEventsOmitted": int(manifest.get("namingEventsOmitted") or 0) + 1}


def quarantine_tags(event_id: str) -> dict[str, str]:
    """The manifest's index tags (of the event that created it): findable by ``kind`` without
    listing the container."""
    return {"kind": "unverified-manifest", "eventId": event_id}
