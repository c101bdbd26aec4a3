"""Answer a data-subject request for one participant: list, export or erase their recordings.

The archiver keeps a participant index in the registry table (one entity per recording under
the participant's partition, see ``registry.schema``), so finding every recording a person
appears in is one partition query, not a scan of the archive.

``export`` streams every blob of those recordings (chunks, chunk metadata, manifest) to
``OUT/<encoded recordingId>/`` and checks each file against the MD5 in the manifest; it writes
``OUT/export.json`` with the participant's channels per recording. ``erase`` deletes the
recordings the participant appears in: a recording is one set of files shared by everyone in the
call, so erasing it erases it for every participant (review ``list`` first). The manifest is
deleted first, so an interrupted erase never leaves a recording that claims to be complete;
then the chunks, then every participant's index entity for it; the registry row is marked
``ArchiveStatus = erased`` and the erase announced (``RecordingErased``, naming no participant).
Its pending-event row is written whatever the operator's settings say, so an erase is never
left unannounced: when they name the events topic the tool publishes it; when they do not, or
the publish fails (e.g. the operator's identity may not send to the topic), the reconciler
publishes it with the app's settings and identity (in a deployment that does not publish, the
row stays: one small entity per erased recording, published if events are turned on later).
With blob versioning or soft delete on (as the Azure deployment configures), deleted data stays
recoverable for the retention period; with a WORM policy the service refuses the deletion and
the erase reports it. The command line is
``python -m scripts.export_participant``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from recording_pipeline.archive import manifest as manifest_module
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.events_out.announce import RecordingEvents
from recording_pipeline.events_out.cloud_events import EventName
from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema
from recording_pipeline.registry.archive_writes import ArchiveRegistry
from recording_pipeline.registry.schema import participant_partition_key


def participant_recordings(table: TableClient, participant_id: str) -> list[dict[str, Any]]:
    """The participant's index entities, oldest recording first."""
    partition = participant_partition_key(participant_id).replace("'", "''")
    query = f"{schema.PARTITION_KEY} eq '{partition}'"
    rows = [dict(row) for row in table.query_entities(query)]
    return sorted(rows, key=lambda row: str(row.get(schema.RECORDING_START_TIME, "")))


def index_listing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``list`` prints of each index entity (property names as the table has them)."""
    shown = (schema.RECORDING_ID, schema.CALL_ID, schema.CHANNEL, schema.MANIFEST_BLOB)
    return [
        {key: row.get(key) for key in shown}
        | {schema.RECORDING_START_TIME: row.get(schema.RECORDING_START_TIME)}
        for row in rows
    ]


def read_manifest(container: ContainerClient, name: str) -> dict[str, Any]:
    """The archiver's manifest reader (same size cap), for a manifest the index says exists."""
    manifest = manifest_module.read_manifest(container, name)
    if manifest is None:
        raise ResourceNotFoundError(f"manifest {name} named by the participant index is missing")
    return manifest


def recording_blobs(manifest: dict[str, Any]) -> list[tuple[str, str | None]]:
    """``(blob name, base64 MD5 or None)`` of every chunk file of a recording."""
    blobs: list[tuple[str, str | None]] = []
    for chunk in manifest["chunks"]:
        blobs.append((chunk["contentBlob"], chunk["contentMd5"]))
        if chunk.get("metadataBlob"):
            blobs.append((chunk["metadataBlob"], chunk.get("metadataMd5")))
    return blobs


def export_recordings(
    container: ContainerClient, rows: list[dict[str, Any]], out: Path, participant_id: str
) -> dict[str, Any]:
    """Stream every file to ``out`` and verify it; returns the export summary."""
    summary: dict[str, Any] = {"participantId": participant_id, "recordings": []}
    for row in rows:
        manifest = read_manifest(container, row[schema.MANIFEST_BLOB])
        folder = out / encode_id(row[schema.RECORDING_ID])
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name, expected_md5 in [*recording_blobs(manifest), (row[schema.MANIFEST_BLOB], None)]:
            target = folder / name.rsplit("/", 1)[-1]
            digest = _download(container, name, target)
            if expected_md5 is not None and base64.b64encode(digest).decode() != expected_md5:
                raise RuntimeError(f"{name}: MD5 differs from the manifest; export incomplete")
            files.append(str(target.relative_to(out)))
        summary["recordings"].append(
            {
                "recordingId": row[schema.RECORDING_ID],
                "callId": row[schema.CALL_ID],
                "recordingStartTime": row[schema.RECORDING_START_TIME],
                "channels": json.loads(row.get(schema.CHANNELS_JSON, "[]")),
                "files": files,
            }
        )
    (out / "export.json").write_text(json.dumps(summary, indent=2))
    return summary


def _download(container: ContainerClient, name: str, target: Path) -> bytes:
    """Stream a blob to a file in pieces, hashing as it goes (recordings can be gigabytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with target.open("wb") as file:
        for piece in container.get_blob_client(name).download_blob().chunks():
            digest.update(piece)
            file.write(piece)
    return digest.digest()


def erase_recordings(
    container: ContainerClient,
    table: TableClient,
    rows: list[dict[str, Any]],
    events: RecordingEvents,
) -> list[str]:
    """Delete the recordings in ``rows`` (manifest first) and their index entities; each erase
    is announced through ``events``: its pending row is written before anything is deleted,
    even when ``events`` does not publish (the reconciler does), and an erase that stops
    half-way is never announced as done (the row names a recording not yet ``erased``)."""
    registry = ArchiveRegistry(table)
    erased = []
    for row in rows:
        manifest = read_manifest(container, row[schema.MANIFEST_BLOB])
        recording_id = manifest["recordingId"]
        pending = events.intend(EventName.ERASED, recording_id, at=iso(utc_now()), note_always=True)
        _delete_blob(container, row[schema.MANIFEST_BLOB])
        for name, _ in recording_blobs(manifest):
            _delete_blob(container, name)
        registry.unindex_participants(manifest)
        registry.mark_erased(recording_id)
        events.announce(pending)
        erased.append(recording_id)
    return erased


def _delete_blob(container: ContainerClient, name: str) -> None:
    try:
        container.delete_blob(name, delete_snapshots="include")
    except ResourceNotFoundError:
        return
    except HttpResponseError as error:
        code = getattr(error, "error_code", None)
        raise RuntimeError(f"{name} could not be deleted ({code}): {error}") from error
