"""The per-recording ``manifest.json``: the completion marker and the index of an archive.

It is written last, once, with ``If-None-Match: *``: its presence means every chunk was committed
and verified. Everything after it (registry, participant index, deletion from ACS) is rebuilt
from the manifest alone, so a redelivered or duplicate event finishes those steps from the
stored manifest even if the first worker died half-way through them.
"""

from __future__ import annotations

import json
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient, ContentSettings

from recording_pipeline.archive.chunk_copy import CopiedBlob
from recording_pipeline.archive.chunk_metadata import ChunkMetadata
from recording_pipeline.archive.events import ChunkRef, RecordingEvent
from recording_pipeline.manifest_file import read_manifest

__all__ = ["ArchivedChunk", "build_manifest", "read_manifest", "write_manifest"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArchivedChunk:
    """One chunk once its content (and, when ACS still had it, its metadata) is committed."""

    ref: ChunkRef
    content: CopiedBlob
    metadata: CopiedBlob | None
    details: ChunkMetadata


def build_manifest(
    event: RecordingEvent, prefix: str, chunks: list[ArchivedChunk], archived_at: datetime
) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "eventId": event.event_id,
        "callId": event.call_id,
        "serverCallId": event.server_call_id,
        "recordingId": event.recording_id,
        "recordingStartTime": event.recording_start_time.isoformat(),
        "recordingDurationMs": event.recording_duration_ms,
        "sessionEndReason": event.session_end_reason,
        "contentType": event.content_type or _first(c.details.content_type for c in chunks),
        "channelType": event.channel_type or _first(c.details.channel_type for c in chunks),
        "formatType": event.format_type or _first(c.details.format_type for c in chunks),
        "blobPrefix": prefix,
        "chunks": [_chunk_entry(chunk) for chunk in chunks],
        "totalBytes": sum(chunk.content.size for chunk in chunks),
        "participants": _participants(chunks),
        "pauseResumeIntervals": _pause_intervals(chunks),
        "archivedAt": archived_at.isoformat(),
    }


def _chunk_entry(chunk: ArchivedChunk) -> dict[str, Any]:
    return {
        "index": chunk.ref.index,
        "documentId": chunk.ref.document_id,
        "endReason": chunk.ref.end_reason,
        "chunkStartTime": chunk.details.chunk_start_time,
        "chunkDurationMs": chunk.details.chunk_duration_ms,
        "contentBlob": chunk.content.name,
        "contentBytes": chunk.content.size,
        "contentMd5": b64encode(chunk.content.md5).decode(),
        "metadataBlob": chunk.metadata.name if chunk.metadata else None,
        "metadataBytes": chunk.metadata.size if chunk.metadata else None,
        "metadataMd5": b64encode(chunk.metadata.md5).decode() if chunk.metadata else None,
        "metadataProblems": chunk.details.problems,
        "deleteLocation": chunk.ref.delete_location,
    }


def _participants(chunks: list[ArchivedChunk]) -> list[dict[str, Any]]:
    """Each participant once, with every channel it had in any chunk."""
    channels: dict[str, set[int]] = {}
    for chunk in chunks:
        for participant in chunk.details.participants:
            seen = channels.setdefault(participant.participant_id, set())
            if participant.channel is not None:
                seen.add(participant.channel)
    return [{"participantId": pid, "channels": sorted(chans)} for pid, chans in channels.items()]


def _pause_intervals(chunks: list[ArchivedChunk]) -> list[dict[str, Any]]:
    intervals: list[dict[str, Any]] = []
    for chunk in chunks:
        for interval in chunk.details.pause_resume_intervals:
            if interval not in intervals:
                intervals.append(interval)
    return intervals


def _first(values: Any) -> str | None:
    return next((value for value in values if value), None)


def write_manifest(
    container: ContainerClient, name: str, manifest: dict[str, Any], *, tags: dict[str, str]
) -> tuple[dict[str, Any], bool]:
    """Create the manifest once; ``(stored manifest, True if this call created it)``.

    When a concurrent copy wrote it first, that one is kept and returned: both described the
    same verified blobs, and the registry must show a single archive time.
    """
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    try:
        container.upload_blob(
            name,
            body,
            overwrite=False,
            content_settings=ContentSettings(content_type="application/json"),
            tags=tags,
        )
    except ResourceExistsError:
        stored = read_manifest(container, name)
        if stored is None:
            raise
        return stored, False
    return manifest, True
