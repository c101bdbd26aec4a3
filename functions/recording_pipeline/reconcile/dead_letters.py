"""Put the recording events Event Grid dead-lettered back on the events queue, each once.

Event Grid writes an event it gave up on as a blob of the dead-letter container, named
``{TOPIC}/{SUBSCRIPTION}/{year}/{month}/{day}/{hour}/{guid}.json`` and holding a JSON array of
one or more events, each with ``deadLetterReason``, ``deliveryAttempts``,
``lastDeliveryOutcome``, ``lastHttpStatusCode``, ``publishTime`` and
``lastDeliveryAttemptTime`` added. This step lists the whole container (the names are not
relied on), reads every blob not yet marked, sends each ``RecordingFileStatusUpdated`` event in
it, without the dead-letter fields, to the events queue, and then marks the blob with an index
tag holding the byte count it read (``reconciledBytes``). The blob stays where it is (the
container's lifecycle rule deletes it), and the mark is a tag, not a change of content: the
Function App may read and tag dead letters but not rewrite them.

Sent first, marked after: a run interrupted in between sends the blob's events again next time,
so an event is re-enqueued at most twice, which the archiver absorbs (a second delivery of an
archived recording finishes only its idempotent tail). A blob that grew after it was marked (its
size differs from the mark) is read again. Events are not validated here: the archiver's one
validation path decides, and rejects a bad one to the poison queue with its reason and a log
marker, as it would have on first delivery.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.queue import QueueClient

from recording_pipeline.archive.events import (
    RECORDING_FILE_STATUS_UPDATED,
    InvalidEventError,
    UnsupportedEventTypeError,
    parse_event_message,
)
from recording_pipeline.clock import iso
from recording_pipeline.reconcile.report import DeadLetterReport

LOGGER = logging.getLogger(__name__)

#: Index tags of a blob whose events were sent: bytes read, and when.
RECONCILED_BYTES_TAG = "reconciledBytes"
RECONCILED_AT_TAG = "reconciledAt"
#: Properties Event Grid adds to a dead-lettered event (not part of the event itself).
DEAD_LETTER_PROPERTIES = frozenset(
    {
        "deadLetterReason",
        "deliveryAttempts",
        "lastDeliveryOutcome",
        "lastHttpStatusCode",
        "publishTime",
        "lastDeliveryAttemptTime",
    }
)
#: A dead-letter blob holds a handful of events; a bigger one is not Event Grid's.
MAX_BLOB_BYTES = 4 * 1024 * 1024
#: A queue message holds 64 KiB; an event that does not fit cannot be re-enqueued.
MAX_MESSAGE_CHARS = 60 * 1024


def recover_dead_letters(
    container: ContainerClient,
    events_queue: QueueClient,
    report: DeadLetterReport,
    *,
    resource_id: str,
    now: datetime,
    dry_run: bool,
    limit: int,
) -> None:
    """Re-enqueue the recording events of every dead-letter blob not yet marked."""
    for blob in _unmarked_blobs(container):
        if report.blobs_read >= limit:
            LOGGER.info("dead letters: %d blobs read; the rest wait for the next run", limit)
            return
        report.blobs_read += 1
        events, problem = _read_events(container, blob)
        problems = [problem] if problem else []
        for event in events:
            problems += _requeue(event, blob.name, events_queue, report, resource_id, dry_run)
        for problem in problems:
            report.unreadable.append({"blob": blob.name, "problem": problem})
            LOGGER.error("dead-letter blob %s cannot be re-enqueued: %s", blob.name, problem)
        if not dry_run:
            _mark(container, blob, now)


def _unmarked_blobs(container: ContainerClient) -> list[BlobProperties]:
    try:
        blobs = list(container.list_blobs(include=["tags"]))
    except ResourceNotFoundError:
        return []  # nothing was ever dead-lettered (locally the container comes with the first)
    return [b for b in blobs if (b.tags or {}).get(RECONCILED_BYTES_TAG) != str(b.size)]


def _read_events(
    container: ContainerClient, blob: BlobProperties
) -> tuple[list[dict[str, Any]], str | None]:
    """The blob's events, or a problem that says why there are none."""
    if blob.size > MAX_BLOB_BYTES:
        return [], f"{blob.size} bytes: larger than a dead-letter blob can be"
    data = container.download_blob(blob.name).readall()
    blob.size = len(data)  # what the mark will say was read (the blob may have grown)
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as error:
        return [], f"not JSON ({type(error).__name__})"
    items = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(item, dict) for item in items):
        return [], "not a JSON array of events"
    return items, None


def _requeue(
    event: dict[str, Any],
    blob_name: str,
    events_queue: QueueClient,
    report: DeadLetterReport,
    resource_id: str,
    dry_run: bool,
) -> list[str]:
    """Send one event back if it is a recording event; the problem when it cannot be sent."""
    if (event.get("eventType") or event.get("type")) != RECORDING_FILE_STATUS_UPDATED:
        report.other_events += 1
        return []
    body = json.dumps({k: v for k, v in event.items() if k not in DEAD_LETTER_PROPERTIES})
    if len(body) > MAX_MESSAGE_CHARS:
        event_id = str(event.get("id"))[:64]
        return [f"event {event_id!r} is {len(body)} characters: too big for a queue message"]
    if not dry_run:
        events_queue.send_message(body)
    recording_id = _recording_id(body, resource_id)
    report.requeued.append(
        {"recordingId": recording_id, "eventId": event.get("id"), "blob": blob_name}
    )
    LOGGER.info("dead-lettered event of recording %s re-enqueued (%s)", recording_id, blob_name)
    return []


def _recording_id(body: str, resource_id: str) -> str | None:
    """The recording the event names, when it is one the archiver would accept."""
    try:
        return parse_event_message(body, resource_id=resource_id).recording_id
    except (InvalidEventError, UnsupportedEventTypeError):
        return None


def _mark(container: ContainerClient, blob: BlobProperties, now: datetime) -> None:
    tags = {**(blob.tags or {}), RECONCILED_BYTES_TAG: str(blob.size), RECONCILED_AT_TAG: iso(now)}
    container.get_blob_client(blob.name).set_blob_tags(tags)
