"""The archive's writes to the registry table: ``Archive*`` properties and the participant index.

The recording entity is shared with the API (docs/architecture.md): the API owns the lifecycle
properties, the archiver owns ``ArchiveStatus``, ``ArchiveEventId``, ``CallId``,
``ArchiveBlobPrefix``, ``ArchiveManifestBlob``, ``ArchiveChunkCount``, ``ArchiveTotalBytes``,
``ArchivedAt``, ``ArchiveError`` and ``ArchiveChunksJson``. Every write is a MERGE of those
properties only, so neither side can erase the other's. The participant erase (an operator's
data-subject request) undoes the archiver's writes here too, so one module writes them all.

``archived`` is terminal. Writes of the transient states (``archiving``, ``lost``, ``failed``)
are conditional on the entity's ETag and skipped when the entity already says ``archived``, so a
late duplicate can never move an archived recording back. The ``archived`` write carries only
values taken from the stored manifest, so two workers finishing the same recording write
identical properties, and keys make duplicate rows impossible.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema
from recording_pipeline.registry.conditional import merge_if_unchanged
from recording_pipeline.registry.pending import PendingIndex
from recording_pipeline.registry.schema import participant_partition_key

LOGGER = logging.getLogger(__name__)

# A string property holds 64 KiB (32 K UTF-16 characters); longer chunk lists stay in the
# manifest.
_MAX_CHUNKS_JSON_CHARS = 30_000


class ArchiveRegistry:
    """Archive-side view of the registry table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def mark_archiving(self, recording_id: str, properties: dict[str, Any]) -> bool:
        """Record that a copy started; ``False`` if the recording is already archived."""
        return self._merge_unless_archived(
            recording_id, {**properties, schema.ARCHIVE_STATUS: schema.STATUS_ARCHIVING}
        )

    def mark_lost(
        self, recording_id: str, properties: dict[str, Any], error: str, *, evidence: str
    ) -> bool:
        """Record that the recording cannot be archived, on ``evidence`` (one of
        ``schema.LOST_EVIDENCE_VALUES``: only a verified path may declare a recording lost)."""
        if evidence not in schema.LOST_EVIDENCE_VALUES:
            raise ValueError(f"{evidence!r} is not evidence a recording is lost")
        return self._merge_unless_archived(
            recording_id,
            {
                **properties,
                schema.ARCHIVE_STATUS: schema.STATUS_LOST,
                schema.ARCHIVE_ERROR: error,
                schema.ARCHIVE_LOST_EVIDENCE: evidence,
            },
        )

    def mark_failed(self, recording_id: str, error: str) -> bool:
        return self._merge_unless_archived(
            recording_id,
            {schema.ARCHIVE_STATUS: schema.STATUS_FAILED, schema.ARCHIVE_ERROR: error[:4000]},
        )

    def mark_archived(self, manifest: dict[str, Any], manifest_blob: str) -> None:
        chunks_json = _chunks_json(manifest["chunks"])
        self._table.upsert_entity(
            {
                **schema.recording_keys(manifest["recordingId"]),
                schema.ARCHIVE_STATUS: schema.STATUS_ARCHIVED,
                schema.ARCHIVE_EVENT_ID: manifest["eventId"],
                schema.CALL_ID: manifest["callId"],
                schema.ARCHIVE_BLOB_PREFIX: manifest["blobPrefix"],
                schema.ARCHIVE_MANIFEST_BLOB: manifest_blob,
                schema.ARCHIVE_CHUNK_COUNT: len(manifest["chunks"]),
                schema.ARCHIVE_TOTAL_BYTES: manifest["totalBytes"],
                schema.ARCHIVED_AT: manifest["archivedAt"],
                schema.ARCHIVE_ERROR: "",
                schema.ARCHIVE_CHUNKS_JSON: chunks_json,
            },
            mode=UpdateMode.MERGE,
        )

    def index_participants(self, manifest: dict[str, Any], manifest_blob: str) -> int:
        """One entity per participant of the recording, keyed for data-export requests."""
        for participant in manifest["participants"]:
            channels = participant["channels"]
            self._table.upsert_entity(
                {
                    schema.PARTITION_KEY: participant_partition_key(participant["participantId"]),
                    schema.ROW_KEY: encode_id(manifest["recordingId"]),
                    schema.PARTICIPANT_ID: participant["participantId"],
                    schema.RECORDING_ID: manifest["recordingId"],
                    schema.CALL_ID: manifest["callId"],
                    schema.CHANNEL: channels[0] if channels else -1,
                    schema.CHANNELS_JSON: json.dumps(channels),
                    schema.MANIFEST_BLOB: manifest_blob,
                    schema.RECORDING_START_TIME: manifest["recordingStartTime"],
                },
                mode=UpdateMode.MERGE,
            )
        return len(manifest["participants"])

    def unindex_participants(self, manifest: dict[str, Any]) -> None:
        """Delete every participant's index entity of the recording (an erase)."""
        for participant in manifest["participants"]:
            self._table.delete_entity(
                participant_partition_key(participant["participantId"]),
                encode_id(manifest["recordingId"]),
            )

    def mark_erased(self, recording_id: str) -> None:
        """Record that the recording's files were deleted on request; final, like ``archived``."""
        self._table.upsert_entity(
            {
                **schema.recording_keys(recording_id),
                schema.ARCHIVE_STATUS: schema.STATUS_ERASED,
                schema.ARCHIVE_MANIFEST_BLOB: "",
            },
            mode=UpdateMode.MERGE,
        )

    def mark_overdue(self, recording_id: str, overdue_at: str) -> bool:
        """Record that no event came in time; ``False`` once any event was seen (the archiver
        wrote a status) or the entity is gone. ETag-checked, so an archiver that starts at the
        same moment wins."""

        def decide(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or current.get(schema.ARCHIVE_STATUS):
                return None
            return {schema.ARCHIVE_STATUS: schema.STATUS_OVERDUE, schema.OVERDUE_AT: overdue_at}

        written = merge_if_unchanged(
            self._table, schema.recording_keys(recording_id), decide, what=_row(recording_id)
        )
        return written is not None

    def mark_acs_delete_pending(self, manifest: dict[str, Any], manifest_blob: str) -> None:
        """Before deleting an archived recording's chunks from ACS: what to retry if it fails."""
        PendingIndex(self._table).add_acs_delete(
            manifest["recordingId"], manifest["archivedAt"], manifest_blob
        )

    def mark_acs_deleted(self, manifest: dict[str, Any]) -> None:
        """Every chunk is deleted from ACS: nothing left to retry."""
        PendingIndex(self._table).remove_acs_delete(manifest["recordingId"], manifest["archivedAt"])

    def _merge_unless_archived(self, recording_id: str, properties: dict[str, Any]) -> bool:
        def decide(current: dict[str, Any] | None) -> dict[str, Any] | None:
            final = (
                current is not None and current.get(schema.ARCHIVE_STATUS) in schema.FINAL_STATUSES
            )
            return None if final else properties

        written = merge_if_unchanged(
            self._table, schema.recording_keys(recording_id), decide, what=_row(recording_id)
        )
        return written is not None


def is_settled(entity: dict[str, Any]) -> bool:
    """Nothing left to archive: archived, erased, or lost on evidence a verified path wrote.

    A ``lost`` without evidence (written before events were bound to the registry, possibly by
    a forged event) is not trusted: ACS may still hold the recording.
    """
    status = entity.get(schema.ARCHIVE_STATUS)
    if status in schema.FINAL_STATUSES:
        return True
    return (
        status == schema.STATUS_LOST
        and entity.get(schema.ARCHIVE_LOST_EVIDENCE) in schema.LOST_EVIDENCE_VALUES
    )


def _chunks_json(chunks: list[dict[str, Any]]) -> str:
    """The chunk list, as detailed as a table property allows (the manifest has everything)."""
    for keys in (("index", "contentBlob", "contentBytes", "contentMd5"), ("index", "contentBlob")):
        encoded = json.dumps([{key: c[key] for key in keys} for c in chunks], separators=(",", ":"))
        if len(encoded) <= _MAX_CHUNKS_JSON_CHARS:
            return encoded
    return "[]"


def _row(recording_id: str) -> str:
    return f"registry row of {recording_id!r}"
