"""The archiver's writes to the registry table: ``Archive*`` properties and the participant index.

The recording entity is shared with the API (docs/architecture.md): the API owns the lifecycle
properties, the archiver owns ``ArchiveStatus``, ``ArchiveEventId``, ``CallId``,
``ArchiveBlobPrefix``, ``ArchiveManifestBlob``, ``ArchiveChunkCount``, ``ArchiveTotalBytes``,
``ArchivedAt``, ``ArchiveError`` and ``ArchiveChunksJson``. Every write is a MERGE of those
properties only, so neither side can erase the other's.

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

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from recording_pipeline.ids import encode_id

LOGGER = logging.getLogger(__name__)

RECORDING_ROW_KEY = "recording"
PARTICIPANT_PARTITION_PREFIX = "participant-"
STATUS_ARCHIVING = "archiving"
STATUS_ARCHIVED = "archived"
STATUS_LOST = "lost"
STATUS_FAILED = "failed"
STATUS_ERASED = "erased"
#: Final: nothing the archiver does may change a row in one of these states.
FINAL_STATUSES = frozenset({STATUS_ARCHIVED, STATUS_ERASED})
# A string property holds 64 KiB (32 K UTF-16 characters); longer chunk lists stay in the
# manifest.
_MAX_CHUNKS_JSON_CHARS = 30_000
_CONDITIONAL_ATTEMPTS = 8


def participant_partition_key(participant_id: str) -> str:
    return PARTICIPANT_PARTITION_PREFIX + encode_id(participant_id)


class ArchiveRegistry:
    """Archive-side view of the registry table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def mark_archiving(self, recording_id: str, properties: dict[str, Any]) -> bool:
        """Record that a copy started; ``False`` if the recording is already archived."""
        return self._merge_unless_archived(
            recording_id, {**properties, "ArchiveStatus": STATUS_ARCHIVING}
        )

    def mark_lost(self, recording_id: str, properties: dict[str, Any], error: str) -> bool:
        return self._merge_unless_archived(
            recording_id, {**properties, "ArchiveStatus": STATUS_LOST, "ArchiveError": error}
        )

    def mark_failed(self, recording_id: str, error: str) -> bool:
        return self._merge_unless_archived(
            recording_id, {"ArchiveStatus": STATUS_FAILED, "ArchiveError": error[:4000]}
        )

    def mark_archived(self, manifest: dict[str, Any], manifest_blob: str) -> None:
        chunks_json = _chunks_json(manifest["chunks"])
        self._table.upsert_entity(
            {
                "PartitionKey": encode_id(manifest["recordingId"]),
                "RowKey": RECORDING_ROW_KEY,
                "ArchiveStatus": STATUS_ARCHIVED,
                "ArchiveEventId": manifest["eventId"],
                "CallId": manifest["callId"],
                "ArchiveBlobPrefix": manifest["blobPrefix"],
                "ArchiveManifestBlob": manifest_blob,
                "ArchiveChunkCount": len(manifest["chunks"]),
                "ArchiveTotalBytes": manifest["totalBytes"],
                "ArchivedAt": manifest["archivedAt"],
                "ArchiveError": "",
                "ArchiveChunksJson": chunks_json,
            },
            mode=UpdateMode.MERGE,
        )

    def index_participants(self, manifest: dict[str, Any], manifest_blob: str) -> int:
        """One entity per participant of the recording, keyed for data-export requests."""
        for participant in manifest["participants"]:
            channels = participant["channels"]
            self._table.upsert_entity(
                {
                    "PartitionKey": participant_partition_key(participant["participantId"]),
                    "RowKey": encode_id(manifest["recordingId"]),
                    "ParticipantId": participant["participantId"],
                    "RecordingId": manifest["recordingId"],
                    "CallId": manifest["callId"],
                    "Channel": channels[0] if channels else -1,
                    "ChannelsJson": json.dumps(channels),
                    "ManifestBlob": manifest_blob,
                    "RecordingStartTime": manifest["recordingStartTime"],
                },
                mode=UpdateMode.MERGE,
            )
        return len(manifest["participants"])

    def _merge_unless_archived(self, recording_id: str, properties: dict[str, Any]) -> bool:
        keys = {"PartitionKey": encode_id(recording_id), "RowKey": RECORDING_ROW_KEY}
        for _ in range(_CONDITIONAL_ATTEMPTS):
            try:
                current = self._table.get_entity(**_key_args(keys))
            except ResourceNotFoundError:
                try:
                    self._table.create_entity({**keys, **properties})
                except ResourceExistsError:
                    continue
                return True
            if current.get("ArchiveStatus") in FINAL_STATUSES:
                return False
            try:
                self._table.update_entity(
                    {**keys, **properties},
                    mode=UpdateMode.MERGE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
            return True
        raise RuntimeError(f"registry row of {recording_id!r} kept changing; giving up for now")


def _chunks_json(chunks: list[dict[str, Any]]) -> str:
    """The chunk list, as detailed as a table property allows (the manifest has everything)."""
    for keys in (("index", "contentBlob", "contentBytes", "contentMd5"), ("index", "contentBlob")):
        encoded = json.dumps([{key: c[key] for key in keys} for c in chunks], separators=(",", ":"))
        if len(encoded) <= _MAX_CHUNKS_JSON_CHARS:
            return encoded
    return "[]"


def _key_args(keys: dict[str, str]) -> dict[str, str]:
    return {"partition_key": keys["PartitionKey"], "row_key": keys["RowKey"]}
