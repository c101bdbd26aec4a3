"""Answer a data-subject request for one participant: list, export or erase their recordings.

The archiver keeps a participant index in the registry table (PartitionKey
``participant-<encode_id(participantId)>``, one entity per recording), so finding every recording
a person appears in is one partition query, not a scan of the archive.

    python -m scripts.export_participant list   --participant-id "8:acs:..."
    python -m scripts.export_participant export --participant-id "8:acs:..." --out ./export
    python -m scripts.export_participant erase  --participant-id "8:acs:..." --yes

``export`` streams every blob of those recordings (chunks, chunk metadata, manifest) to
``OUT/<encoded recordingId>/`` and checks each file against the MD5 in the manifest; it writes
``OUT/export.json`` with the participant's channels per recording. ``erase`` deletes the
recordings the participant appears in: a recording is one set of files shared by everyone in the
call, so erasing it erases it for every participant (review ``list`` first). The manifest is
deleted first, so an interrupted erase never leaves a recording that claims to be complete;
then the chunks, then every participant's index entity for it; the registry row is marked
``ArchiveStatus = erased``. With blob versioning or soft delete on (as the Azure deployment
configures), deleted data stays recoverable for the retention period; with a WORM policy the
service refuses the deletion and this tool reports it.

Settings come from the Function App's environment variables (archive storage, container, table).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from recording_pipeline.archive import manifest as manifest_module
from recording_pipeline.clients import (
    recordings_container_client,
    registry_table_client,
)
from recording_pipeline.ids import encode_id
from recording_pipeline.registry.archive_writes import ArchiveRegistry
from recording_pipeline.registry.schema import participant_partition_key
from recording_pipeline.settings import Settings


def participant_recordings(table: TableClient, participant_id: str) -> list[dict[str, Any]]:
    """The participant's index entities, oldest recording first."""
    partition = participant_partition_key(participant_id).replace("'", "''")
    rows = [dict(row) for row in table.query_entities(f"PartitionKey eq '{partition}'")]
    return sorted(rows, key=lambda row: str(row.get("RecordingStartTime", "")))


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
        manifest = read_manifest(container, row["ManifestBlob"])
        folder = out / encode_id(row["RecordingId"])
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for name, expected_md5 in [*recording_blobs(manifest), (row["ManifestBlob"], None)]:
            target = folder / name.rsplit("/", 1)[-1]
            digest = _download(container, name, target)
            if expected_md5 is not None and base64.b64encode(digest).decode() != expected_md5:
                raise RuntimeError(f"{name}: MD5 differs from the manifest; export incomplete")
            files.append(str(target.relative_to(out)))
        summary["recordings"].append(
            {
                "recordingId": row["RecordingId"],
                "callId": row["CallId"],
                "recordingStartTime": row["RecordingStartTime"],
                "channels": json.loads(row.get("ChannelsJson", "[]")),
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
    container: ContainerClient, table: TableClient, rows: list[dict[str, Any]]
) -> list[str]:
    """Delete the recordings in ``rows`` (manifest first) and their index entities."""
    registry = ArchiveRegistry(table)
    erased = []
    for row in rows:
        manifest = read_manifest(container, row["ManifestBlob"])
        _delete_blob(container, row["ManifestBlob"])
        for name, _ in recording_blobs(manifest):
            _delete_blob(container, name)
        registry.unindex_participants(manifest)
        registry.mark_erased(manifest["recordingId"])
        erased.append(manifest["recordingId"])
    return erased


def _delete_blob(container: ContainerClient, name: str) -> None:
    try:
        container.delete_blob(name, delete_snapshots="include")
    except ResourceNotFoundError:
        return
    except HttpResponseError as error:
        code = getattr(error, "error_code", None)
        raise RuntimeError(f"{name} could not be deleted ({code}): {error}") from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.export_participant",
        description="List, export or erase the archived recordings of one participant.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "print the participant's recordings as JSON"),
        ("export", "download and verify every file of those recordings"),
        ("erase", "delete those recordings (for every participant of them)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--participant-id", required=True, help='e.g. "8:acs:<guid>"')
        if name == "export":
            command.add_argument("--out", type=Path, required=True, help="output directory")
        if name == "erase":
            command.add_argument("--yes", action="store_true", help="confirm the deletion")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "erase" and not args.yes:
        parser.error("erase deletes recordings for every participant in them: add --yes")
    settings = Settings.from_env()
    container = recordings_container_client(settings)
    table = registry_table_client(settings)
    rows = participant_recordings(table, args.participant_id)
    if args.command == "list":
        listed = [
            {key: row.get(key) for key in ("RecordingId", "CallId", "Channel", "ManifestBlob")}
            | {"RecordingStartTime": row.get("RecordingStartTime")}
            for row in rows
        ]
        print(json.dumps(listed, indent=2))
    elif args.command == "export":
        summary = export_recordings(container, rows, args.out, args.participant_id)
        print(f"exported {len(summary['recordings'])} recording(s) to {args.out}")
    else:
        erased = erase_recordings(container, table, rows)
        print(f"erased {len(erased)} recording(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
