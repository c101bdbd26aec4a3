"""Archive a recording announced by a ``RecordingFileStatusUpdated`` queue message.

``handle_event_message`` is what the queue trigger (``function_app.py``) and the local worker
(``local_runtime/archive_worker.py``) call. Its contract with them:

- it **returns** when the message is done with: archived, already archived, ignored (another
  event type), rejected (written to the poison queue with its reason: a message no parser can
  read, whatever the parser raised, an invalid or unsafe event, or one whose chunks' metadata
  contradicts it or cannot be read), quarantined (the registry cannot vouch for the event:
  copied under ``unverified/`` with an error log, see ``quarantine``), or lost (ACS no longer
  has media of a verified recording: recorded as ``lost`` with an error log; retrying cannot
  help);
- it **raises** when a retry may succeed (throttling that outlasted the retries, a storage
  outage, a crash-like failure); the host redelivers, and the next attempt reuses every block
  and blob already written. On the last attempt it records ``failed`` before raising, for a
  bound event only. An event of a known recording and server call whose call id no callback has
  written yet raises too (``binding.CallIdPendingError``): the callback may still come, and on
  the last attempt the host moves the event to the poison queue, where the reconciler replays it
  (no failure is recorded, and ``failures.classify`` calls the error an outage).

Order of work: validate; bind the event to its registry row (``binding``), else quarantine it;
if the manifest exists, only finish the idempotent tail; else check every chunk's metadata
against the registry's call (``source_check``), then copy every chunk (metadata then content,
chunks in index order, ``ARCHIVE_MAX_CONCURRENCY`` at a time), write the manifest last, then
update the registry and the participant index, then delete the chunks from ACS when
``DELETE_FROM_ACS_AFTER_ARCHIVE`` is on. A rejected or quarantined event never touches a
registry row, ACS, or the archive outside ``unverified/``.
"""

from __future__ import annotations

import enum
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from azure.communication.callautomation import CallAutomationClient
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from recording_pipeline.archive.binding import Binding, CallIdPendingError, bind_event
from recording_pipeline.archive.chunk_copy import (
    BlobAttributes,
    BlockBuffers,
    CopiedBlob,
    copy_to_block_blob,
)
from recording_pipeline.archive.chunk_metadata import ChunkMetadata, read_chunk_metadata
from recording_pipeline.archive.events import (
    ChunkRef,
    InvalidEventError,
    RecordingEvent,
    UnsupportedEventTypeError,
    parse_event_message,
)
from recording_pipeline.archive.host_json import max_dequeue_count
from recording_pipeline.archive.layout import (
    content_blob_name,
    content_mime_type,
    manifest_blob_name,
    metadata_blob_name,
    recording_prefix,
)
from recording_pipeline.archive.manifest import (
    ArchivedChunk,
    build_manifest,
    read_manifest,
    write_manifest,
)
from recording_pipeline.archive.media_source import MediaSource, RetrySchedule, SourceGoneError
from recording_pipeline.archive.poison import send_to_poison_once
from recording_pipeline.archive.quarantine import (
    RECORDING_UNVERIFIED_MARKER,
    naming_event,
    note_naming_event,
    quarantine_prefix,
    quarantine_tags,
)
from recording_pipeline.archive.source_check import check_sources
from recording_pipeline.clients import (
    call_automation_client,
    queue_client,
    recordings_container_client,
    registry_table_client,
)
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.events_out.announce import RecordingEvents, recording_events
from recording_pipeline.events_out.cloud_events import EventName
from recording_pipeline.failures import describe
from recording_pipeline.registry import schema
from recording_pipeline.registry.archive_writes import ArchiveRegistry
from recording_pipeline.settings import Settings

LOGGER = logging.getLogger(__name__)
#: Logged at ERROR level when a recording cannot be archived; alert rules match on it.
RECORDING_LOST_MARKER = "RECORDING_LOST"
#: Logged when an event is rejected to the poison queue; the infra's log alert matches both.
EVENT_REJECTED_MARKER = "EVENT_REJECTED"
# Response pieces read from the socket at a time: big enough to keep Python overhead low.
_MEDIA_READ_PIECE = 256 * 1024


class ArchiveOutcome(enum.StrEnum):
    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already-archived"
    LOST = "lost"
    REJECTED = "rejected"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class ArchiveServices:
    """The clients one archive needs, built once per settings (they pool connections)."""

    settings: Settings
    media: CallAutomationClient
    acs: CallAutomationClient
    container: ContainerClient
    table: TableClient
    poison_queue: QueueClient
    #: Shared by every copy of this process, so parallel chunks and messages share one budget.
    block_buffers: BlockBuffers
    #: Announces archived, lost and failed recordings to other services (CloudEvents).
    events: RecordingEvents

    @property
    def registry(self) -> ArchiveRegistry:
        return ArchiveRegistry(self.table)


@lru_cache(maxsize=4)
def archive_services(settings: Settings) -> ArchiveServices:
    container = recordings_container_client(settings)
    table = registry_table_client(settings)
    return ArchiveServices(
        settings=settings,
        # Downloads retry in MediaSource (resuming from the last byte), so the SDK must not.
        media=call_automation_client(
            settings, retry_total=0, connection_data_block_size=_MEDIA_READ_PIECE
        ),
        acs=call_automation_client(settings),
        container=container,
        table=table,
        poison_queue=queue_client(settings, settings.poison_queue),
        block_buffers=BlockBuffers(settings.archive_max_concurrency + 1),
        events=recording_events(settings, table, container),
    )


def handle_event_message(
    body: str | bytes,
    *,
    dequeue_count: int = 1,
    message_id: str | None = None,
    settings: Settings | None = None,
    retry: RetrySchedule | None = None,
) -> ArchiveOutcome:
    """Archive the recording a queue message announces (see the module docstring).

    :raises Exception: any failure a redelivery may fix; the message must not be deleted.
    """
    services = archive_services(settings or Settings.from_env())
    try:
        event = parse_event_message(body, resource_id=services.settings.acs_resource_id)
    except UnsupportedEventTypeError as ignored:
        LOGGER.info("message %s ignored: %s", message_id, ignored)
        return ArchiveOutcome.IGNORED
    except InvalidEventError as invalid:
        return reject(services, body, message_id, invalid.reason)
    except Exception as error:  # no parser failure may cost retries: it fails the same way again
        return reject(services, body, message_id, f"message cannot be parsed ({error!r:.300})")
    binding: Binding | None = None
    try:
        binding = bind_event(event, services.table)
        if binding.event is None:
            return quarantine_recording(
                event, str(binding.problem), services, retry=retry or RetrySchedule()
            )
        return archive_recording(
            binding.event, services, retry=retry or RetrySchedule(), final=binding.final
        )
    except InvalidEventError as invalid:  # the sources contradict the event
        return reject(services, body, message_id, invalid.reason)
    except CallIdPendingError as pending:
        if dequeue_count >= max_dequeue_count():
            LOGGER.warning(
                "message %s goes to %s for the reconciler's replay: %s",
                message_id,
                services.settings.poison_queue,
                pending,
            )
        raise
    except Exception as error:
        bound = binding is not None and binding.event is not None
        if bound and dequeue_count >= max_dequeue_count():
            mark_failed(services, event.recording_id, describe(error))
        raise


def mark_failed(services: ArchiveServices, recording_id: str, error: str) -> None:
    """The last attempt failed: ``failed`` with the error, announced (``RecordingFailed``)."""
    reason = error[:4000]
    pending = services.events.intend(
        EventName.FAILED, recording_id, at=iso(utc_now()), reason=reason
    )
    if services.registry.mark_failed(recording_id, reason):
        services.events.announce(pending)
    else:  # archived or erased meanwhile: nothing failed
        services.events.cancel(pending)


def reject(
    services: ArchiveServices, body: str | bytes, message_id: str | None, reason: str
) -> ArchiveOutcome:
    """Poison the message with its reason (once per message id) and acknowledge it."""
    LOGGER.warning(
        "%s message %s rejected to %s: %s",
        EVENT_REJECTED_MARKER,
        message_id,
        services.settings.poison_queue,
        reason,
    )
    send_to_poison_once(
        services.poison_queue, services.table, reason=reason, message_id=message_id, body=body
    )
    return ArchiveOutcome.REJECTED


def archive_recording(
    event: RecordingEvent, services: ArchiveServices, *, retry: RetrySchedule, final: bool = False
) -> ArchiveOutcome:
    """Archive a recording ``event`` names, ``event`` being bound to the registry already
    (``final``: the registry says archived or erased)."""
    prefix = recording_prefix(event.call_id, event.recording_id, event.recording_start_time)
    manifest_name = manifest_blob_name(prefix)
    stored = read_manifest(services.container, manifest_name)
    if stored is not None:
        LOGGER.info("recording %s is already archived at %s", event.recording_id, manifest_name)
        finish_archive(stored, manifest_name, services)
        return ArchiveOutcome.ALREADY_ARCHIVED
    # Archived (its manifest since removed) or erased by a data-subject request: copying it
    # again from ACS would bring back data that was deliberately deleted. Asked before the
    # sources are read (ACS may have deleted them: nothing to refuse) and again, atomically, by
    # the conditional write.
    if final:
        return _final_in_registry(event)
    check_sources(event, services.media, retry=retry)
    if not services.registry.mark_archiving(event.recording_id, _started_properties(event, prefix)):
        return _final_in_registry(event)
    archived, missing = copy_recording(event, prefix, services, retry=retry)
    if missing:
        return _handle_missing_source(event, prefix, archived, missing, services)
    manifest = build_manifest(event, prefix, archived, archived_at=datetime.now(UTC))
    stored, created = write_manifest(
        services.container, manifest_name, manifest, tags=_manifest_tags(event)
    )
    finish_archive(stored, manifest_name, services)
    LOGGER.info(
        "recording %s archived: %d chunks, %d bytes at %s",
        event.recording_id,
        len(stored["chunks"]),
        stored["totalBytes"],
        prefix,
    )
    return ArchiveOutcome.ARCHIVED if created else ArchiveOutcome.ALREADY_ARCHIVED


def _final_in_registry(event: RecordingEvent) -> ArchiveOutcome:
    LOGGER.warning(
        "recording %s is final in the registry (archived or erased); not archived again",
        event.recording_id,
    )
    return ArchiveOutcome.IGNORED


def quarantine_recording(
    event: RecordingEvent, problem: str, services: ArchiveServices, *, retry: RetrySchedule
) -> ArchiveOutcome:
    """Copy an unbound event's documents under ``unverified/`` (see ``quarantine``): nothing is
    deleted from ACS and no registry row written, whatever the event names."""
    check_sources(event, services.media, retry=retry)
    prefix = quarantine_prefix(event)
    manifest_name = manifest_blob_name(prefix)
    entry = naming_event(event, problem)
    created = False
    if read_manifest(services.container, manifest_name) is None:
        archived, missing = copy_recording(event, prefix, services, retry=retry, quarantined=True)
        manifest = {
            **build_manifest(event, prefix, archived, archived_at=datetime.now(UTC)),
            "unverified": problem,
            "missingSources": missing,
            "namingEvents": [entry],
        }
        tags = _valid_tags(quarantine_tags(event.event_id))
        created = write_manifest(services.container, manifest_name, manifest, tags=tags)[1]
    if not created:  # the documents were quarantined before: list this event too
        note_naming_event(
            services.container,
            manifest_name,
            entry,
            lambda event_id: _valid_tags(quarantine_tags(event_id)),
        )
    LOGGER.error(
        "%s event %s names recording %s (call %s, server call %s) but %s; its documents are "
        "copied to %s, nothing was deleted from ACS and no registry row was written",
        RECORDING_UNVERIFIED_MARKER,
        event.event_id,
        event.recording_id,
        event.call_id,
        event.server_call_id,
        problem,
        prefix,
    )
    return ArchiveOutcome.QUARANTINED


def finish_archive(manifest: dict[str, Any], manifest_name: str, services: ArchiveServices) -> None:
    """The idempotent tail after the manifest: registry, participant index, the
    ``RecordingArchived`` event, deletion from ACS.

    Every redelivery runs it again, so the event is published again (same id) when a previous
    attempt stopped before it; a publish that fails is logged and left to the reconciler, and
    never fails the archive. The deletion is noted in the registry first and the note removed
    once every chunk is gone, so a deletion that fails after the host's last attempt is retried
    by the reconciler.
    """
    pending = services.events.intend(
        EventName.ARCHIVED, manifest["recordingId"], at=_archived_at(manifest)
    )
    services.registry.mark_archived(manifest, manifest_name)
    services.registry.index_participants(manifest, manifest_name)
    services.events.announce(pending, manifest=manifest)
    if services.settings.delete_from_acs_after_archive:
        services.registry.mark_acs_delete_pending(manifest, manifest_name)
        for chunk in manifest["chunks"]:
            delete_from_acs(services.acs, chunk["deleteLocation"])
        services.registry.mark_acs_deleted(manifest)


def _archived_at(manifest: dict[str, Any]) -> str:
    """The manifest's archive time in the registry's format (the same on every redelivery)."""
    return iso(datetime.fromisoformat(str(manifest["archivedAt"])))


def delete_from_acs(acs: CallAutomationClient, delete_location: str) -> None:
    """Delete one archived chunk from ACS; already deleted (404) is success."""
    try:
        acs.delete_recording(delete_location)
    except ResourceNotFoundError:
        LOGGER.info("%s was already deleted from ACS", delete_location)


def copy_recording(
    event: RecordingEvent,
    prefix: str,
    services: ArchiveServices,
    *,
    retry: RetrySchedule,
    quarantined: bool = False,
) -> tuple[list[ArchivedChunk], list[str]]:
    """Copy every chunk; ``(archived chunks, descriptions of sources ACS no longer has)``.

    A chunk whose source is gone does not stop the others: whatever ACS still has is archived.
    """
    workers = services.settings.archive_max_concurrency
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="archive-chunk") as pool:
        futures: list[Future[tuple[ArchivedChunk | None, list[str]]]] = [
            pool.submit(copy_chunk, event, chunk, prefix, services, retry, quarantined)
            for chunk in event.chunks
        ]
        outcomes = [future.result() for future in futures]
    archived = [chunk for chunk, _ in outcomes if chunk is not None]
    missing = [item for _, gone in outcomes for item in gone]
    return archived, missing


def copy_chunk(
    event: RecordingEvent,
    chunk: ChunkRef,
    prefix: str,
    services: ArchiveServices,
    retry: RetrySchedule,
    quarantined: bool = False,
) -> tuple[ArchivedChunk | None, list[str]]:
    """Metadata first (it names the format when the event does not), then content."""
    block_size = services.settings.archive_block_size_bytes
    missing: list[str] = []
    metadata_blob = services.container.get_blob_client(metadata_blob_name(prefix, chunk.index))
    metadata: CopiedBlob | None = None
    details = ChunkMetadata()
    try:
        metadata = copy_to_block_blob(
            MediaSource(services.media, chunk.metadata_location, retry=retry),
            metadata_blob,
            BlobAttributes("application/json", _blob_metadata(event, chunk, "metadata"), {}),
            block_size=block_size,
            buffers=services.block_buffers,
        )
        details = read_chunk_metadata(metadata_blob, metadata.size)
    except SourceGoneError as gone:
        missing.append(f"chunk {chunk.index} metadata ({gone.status} at {gone.url})")
        details.problems.append("metadata expired before it was archived")
    for problem in details.problems:
        LOGGER.warning("recording %s chunk %d: %s", event.recording_id, chunk.index, problem)
    format_type = event.format_type or details.format_type or "bin"
    content_blob = services.container.get_blob_client(
        content_blob_name(prefix, chunk.index, format_type)
    )
    try:
        content = copy_to_block_blob(
            MediaSource(services.media, chunk.content_location, retry=retry),
            content_blob,
            _content_attributes(event, chunk, details, format_type, quarantined=quarantined),
            block_size=block_size,
            buffers=services.block_buffers,
        )
    except SourceGoneError as gone:
        missing.append(f"chunk {chunk.index} content ({gone.status} at {gone.url})")
        return None, missing
    return ArchivedChunk(chunk, content, metadata, details), missing


def _handle_missing_source(
    event: RecordingEvent,
    prefix: str,
    archived: list[ArchivedChunk],
    missing: list[str],
    services: ArchiveServices,
) -> ArchiveOutcome:
    """404 from ACS: a concurrent copy may have finished and deleted it; else it is lost."""
    manifest_name = manifest_blob_name(prefix)
    stored = read_manifest(services.container, manifest_name)
    if stored is not None:
        finish_archive(stored, manifest_name, services)
        return ArchiveOutcome.ALREADY_ARCHIVED
    error = "source expired or deleted in ACS before archival: " + "; ".join(missing)
    properties = {
        **_started_properties(event, prefix),
        schema.ARCHIVE_CHUNK_COUNT: len(archived),
        schema.ARCHIVE_TOTAL_BYTES: sum(chunk.content.size for chunk in archived),
        schema.ARCHIVE_CHUNKS_JSON: json.dumps(
            [{"index": c.ref.index, "contentBlob": c.content.name} for c in archived]
        ),
    }
    reason = error[:4000]
    pending = services.events.intend(
        EventName.LOST, event.recording_id, at=iso(utc_now()), reason=reason
    )
    if services.registry.mark_lost(
        event.recording_id, properties, reason, evidence=schema.LOST_BY_VERIFIED_404
    ):
        services.events.announce(pending)
    else:  # archived by a concurrent copy after all
        services.events.cancel(pending)
    LOGGER.error(
        "%s recording %s (call %s, event %s): %s",
        RECORDING_LOST_MARKER,
        event.recording_id,
        event.call_id,
        event.event_id,
        error,
    )
    return ArchiveOutcome.LOST


def _started_properties(event: RecordingEvent, prefix: str) -> dict[str, Any]:
    return {
        schema.ARCHIVE_EVENT_ID: event.event_id,
        schema.CALL_ID: event.call_id,
        schema.ARCHIVE_BLOB_PREFIX: prefix,
    }


def _blob_metadata(event: RecordingEvent, chunk: ChunkRef, kind: str) -> dict[str, str]:
    """Blob metadata is sent as headers: every value here is validated ASCII."""
    return {
        "kind": kind,
        "callId": event.call_id,
        "serverCallId": event.server_call_id,
        "recordingId": event.recording_id,
        "chunkIndex": str(chunk.index),
        "documentId": chunk.document_id,
        "eventId": event.event_id,
        "recordingStartTime": event.recording_start_time.isoformat(),
    }


def _content_attributes(
    event: RecordingEvent,
    chunk: ChunkRef,
    details: ChunkMetadata,
    format_type: str,
    *,
    quarantined: bool = False,
) -> BlobAttributes:
    content_type = event.content_type or details.content_type
    channel_type = event.channel_type or details.channel_type
    metadata = {
        **_blob_metadata(event, chunk, "content"),
        "contentType": content_type or "",
        "channelType": channel_type or "",
        "formatType": format_type,
        "chunkStartTime": details.chunk_start_time or "",
        "chunkDurationMs": _text(details.chunk_duration_ms),
    }
    tags = {
        # A tag query for archived content must not find what the registry cannot vouch for.
        "kind": "unverified-content" if quarantined else "content",
        "callId": event.call_id,
        "serverCallId": event.server_call_id,
        "recordingId": event.recording_id,
        "chunkIndex": str(chunk.index),
        "contentType": content_type or "",
        "channelType": channel_type or "",
        "format": format_type,
        "startTime": details.chunk_start_time or event.recording_start_time.isoformat(),
        "durationMs": _text(details.chunk_duration_ms),
    }
    mime = content_mime_type(format_type) if format_type in ("wav", "mp3", "mp4") else None
    return BlobAttributes(
        mime or "application/octet-stream",
        {key: value for key, value in metadata.items() if value},
        _valid_tags(tags),
    )


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _manifest_tags(event: RecordingEvent) -> dict[str, str]:
    return _valid_tags(
        {"kind": "manifest", "callId": event.call_id, "recordingId": event.recording_id}
    )


def _valid_tags(tags: dict[str, str]) -> dict[str, str]:
    """Blob index tags take at most 256 characters of a small alphabet; drop what does not fit."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-.:=_/")
    return {
        key: value
        for key, value in tags.items()
        if value and len(value) <= 256 and set(value) <= allowed
    }


__all__ = [
    "ArchiveOutcome",
    "ArchiveServices",
    "archive_recording",
    "handle_event_message",
]
