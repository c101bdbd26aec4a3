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
size differs from the mark) is read again.

Each blob is handled on its own: one that cannot be read, sent or marked is reported for itself
(``unreadable``) and the others still are. When the tag cannot be written (a blob holds at most
10 index tags; a role may be missing) the mark goes to the registry instead (``registry.pending``,
partition ``dead-letter-mark``) and the blob is reported (``untagged``), so its events are not
sent again on every run; the registry's mark is dropped once the blob is gone.

Events are not validated here: the archiver's one
validation path decides, and rejects a bad one to the poison queue with its reason and a log
marker, as it would have on first delivery.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.queue import QueueClient

from recording_pipeline.archive.events import (
    RECORDING_FILE_STATUS_UPDATED,
    InvalidEventError,
    UnsupportedEventTypeError,
    parse_event_message,
)
from recording_pipeline.clock import iso
from recording_pipeline.failures import describe
from recording_pipeline.reconcile.report import DeadLetterReport
from recording_pipeline.registry.pending import PendingIndex

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
    table: TableClient,
    report: DeadLetterReport,
    *,
    resource_id: str,
    now: datetime,
    dry_run: bool,
    limit: int,
) -> None:
    """Re-enqueue the recording events of every dead-letter blob not yet marked, each blob on
    its own (one that fails is reported and the next one is still read)."""
    marks = PendingIndex(table)
    marked_here = marks.dead_letter_marks()
    blobs = _listed_blobs(container)
    for blob in _unmarked(blobs, marked_here):
        if report.blobs_read >= limit:
            LOGGER.info("dead letters: %d blobs read; the rest wait for the next run", limit)
            break
        report.blobs_read += 1
        try:
            _recover_blob(container, blob, events_queue, marks, report, resource_id, now, dry_run)
        except Exception as error:  # this blob only: the others must still be read
            _unreadable(report, blob.name, f"could not be handled: {describe(error)}")
    if not dry_run:
        for gone in marked_here.keys() - {blob.name for blob in blobs}:
            marks.remove_dead_letter_mark(gone)


def _recover_blob(
    container: ContainerClient,
    blob: BlobProperties,
    events_queue: QueueClient,
    marks: PendingIndex,
    report: DeadLetterReport,
    resource_id: str,
    now: datetime,
    dry_run: bool,
) -> None:
    events, problem = _read_events(container, blob)
    problems = [problem] if problem else []
    for event in events:
        problems += _requeue(event, blob.name, events_queue, report, resource_id, dry_run)
    for problem in problems:
        _unreadable(report, blob.name, problem)
    if dry_run:
        return
    try:
        _mark(container, blob, now)
    except HttpResponseError as error:
        marks.mark_dead_letter(blob.name, blob.size, now)
        reason = describe(error)
        report.untagged.append({"blob": blob.name, "reason": reason})
        LOGGER.error(
            "dead-letter blob %s: its tag could not be written (%s); marked in the registry",
            blob.name,
            reason,
        )


def _unreadable(report: DeadLetterReport, blob_name: str, problem: str) -> None:
    report.unreadable.append({"blob": blob_name, "problem": problem})
    LOGGER.error("dead-letter blob %s cannot be re-enqueued: %s", blob_name, problem)


def _listed_blobs(container: ContainerClient) -> list[BlobProperties]:
    try:
        return list(container.list_blobs(include=["tags"]))
    except ResourceNotFoundError:
        return []  # nothing was ever dead-lettered (locally the container comes with the first)


def _unmarked(blobs: list[BlobProperties], marked_here: dict[str, int]) -> list[BlobProperties]:
    """The blobs whose current size neither their tag nor the registry's mark records."""
    return [
        blob
        for blob in blobs
        if (blob.tags or {}).get(RECONCILED_BYTES_TAG) != str(blob.size)
        and marked_here.get(blob.name) != blob.size
    ]


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
