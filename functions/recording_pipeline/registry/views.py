"""What readers see of a recording entity: the API's full view, list summaries, the archive part.

A recording with any ``ArchiveStatus`` has ended (ACS publishes files only then), so every view
reads it as ``stopped`` even when the API never saw the stop (a hang-up); the list filter does
the same on the service side (:func:`state_filter`) and finishes it here.

A row that holds text which is not valid Unicode (a lone surrogate written before the edge
checked text, or by hand) is shown, never skipped and never a 500: each bad code unit becomes
U+FFFD and a warning names the row. Skipping it would hide a recording from the list; showing
it marked lets an operator find and fix it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from azure.data.tables import EntityProperty

from recording_pipeline.clock import iso
from recording_pipeline.input_rules import sanitized
from recording_pipeline.registry import schema
from recording_pipeline.registry.states import TERMINAL_STATES, history

LOGGER = logging.getLogger(__name__)

#: Wire name of each archive property in the API's ``archive`` view.
ARCHIVE_FIELDS = {
    "status": schema.ARCHIVE_STATUS,
    "callId": schema.CALL_ID,
    "blobPrefix": schema.ARCHIVE_BLOB_PREFIX,
    "manifestBlob": schema.ARCHIVE_MANIFEST_BLOB,
    "chunkCount": schema.ARCHIVE_CHUNK_COUNT,
    "totalBytes": schema.ARCHIVE_TOTAL_BYTES,
    "archivedAt": schema.ARCHIVED_AT,
    "error": schema.ARCHIVE_ERROR,
    "overdueAt": schema.OVERDUE_AT,
}

#: Properties a list item needs; the history and chunk lists stay in the table.
SUMMARY_PROPERTIES = [
    schema.PARTITION_KEY,
    schema.RECORDING_ID,
    schema.SERVER_CALL_ID,
    schema.CALL_CONNECTION_ID,
    schema.CONTENT_TYPE,
    schema.CHANNEL_TYPE,
    schema.FORMAT_TYPE,
    schema.STATE,
    schema.CREATED_AT,
    schema.UPDATED_AT,
    schema.ARCHIVE_STATUS,
    schema.ARCHIVED_AT,
    schema.ARCHIVE_CHUNK_COUNT,
    schema.ARCHIVE_TOTAL_BYTES,
    schema.OVERDUE_AT,
    schema.PARTICIPANT_ID,
]


@dataclass(frozen=True)
class RegistryEntry:
    """The registry's view of one recording (API fields and the archiver's fields)."""

    recording_id: str
    state: str
    history: list[dict[str, Any]]
    server_call_id: str | None
    call_connection_id: str | None
    options: dict[str, Any] | None
    created_at: str | None
    updated_at: str | None
    failure: str | None
    archive: dict[str, Any] | None


@dataclass(frozen=True)
class RecordingPage:
    """One page of recording summaries and the table position where the next page starts."""

    items: list[dict[str, Any]]
    next_position: dict[str, str | None] | None


def effective_state(entity: dict[str, Any]) -> str:
    """The registry state, counting a recording with an archive as ``stopped``.

    ACS publishes a recording's files only after the recording has ended, by a stop or because
    the call ended. A hang-up reaches this app through no API call, so ``State`` can still say
    ``active``; the archive fields (written by the archiver) prove it is over.
    """
    state = str(entity.get(schema.STATE) or "unknown")
    if state not in TERMINAL_STATES and entity.get(schema.ARCHIVE_STATUS):
        return "stopped"
    return state


def state_filter(state: str, parameters: dict[str, Any]) -> str:
    """Server-side part of a state filter; :func:`effective_state` finishes it client-side."""
    parameters["state"] = state
    if state != "stopped":
        return f"{schema.STATE} eq @state"
    parameters["failed"] = "failed"
    parameters["anyArchiveStatus"] = "a"  # every archive status sorts after "a"
    # Spaces before ")": the SDK's parameter substitution would read "@failed))" as one name.
    return (
        f"({schema.STATE} eq @state or ({schema.ARCHIVE_STATUS} ge @anyArchiveStatus"
        f" and {schema.STATE} ne @failed ) )"
    )


def entry(entity: dict[str, Any]) -> RegistryEntry:
    options_json = entity.get(schema.OPTIONS_JSON)
    built = RegistryEntry(
        recording_id=str(entity.get(schema.RECORDING_ID, "")),
        state=effective_state(entity),
        history=history(entity),
        server_call_id=entity.get(schema.SERVER_CALL_ID) or None,
        call_connection_id=entity.get(schema.CALL_CONNECTION_ID) or None,
        options=_json_or_none(options_json),
        created_at=entity.get(schema.CREATED_AT) or None,
        updated_at=entity.get(schema.UPDATED_AT) or None,
        failure=entity.get(schema.FAILURE_REASON) or None,
        archive=_archive(entity),
    )
    fields = {field.name: getattr(built, field.name) for field in dataclasses.fields(built)}
    clean, changed = sanitized(fields)
    if not changed:
        return built
    _warn_unreadable(entity)
    return RegistryEntry(**clean)


def summary(entity: dict[str, Any]) -> dict[str, Any]:
    """The list item of one recording entity (wire names, as ``schemas.RecordingSummary``)."""

    def text(name: str) -> str | None:
        value = entity.get(name)
        if isinstance(value, datetime):
            return iso(value)
        return str(value) if value not in (None, "") else None

    def number(name: str) -> int | None:
        value = entity.get(name)
        if isinstance(value, EntityProperty):
            value = value.value
        return int(value) if isinstance(value, int) else None

    recording_id = text(schema.RECORDING_ID) or unquote(
        str(entity.get(schema.PARTITION_KEY, "")), errors="replace"
    )
    item = {
        "recordingId": recording_id,
        "serverCallId": text(schema.SERVER_CALL_ID),
        "callConnectionId": text(schema.CALL_CONNECTION_ID),
        "state": effective_state(entity),
        "content": text(schema.CONTENT_TYPE),
        "channel": text(schema.CHANNEL_TYPE),
        "format": text(schema.FORMAT_TYPE),
        "createdAt": text(schema.CREATED_AT),
        "updatedAt": text(schema.UPDATED_AT),
        "archiveStatus": text(schema.ARCHIVE_STATUS),
        "archivedAt": text(schema.ARCHIVED_AT),
        "chunkCount": number(schema.ARCHIVE_CHUNK_COUNT),
        "totalBytes": number(schema.ARCHIVE_TOTAL_BYTES),
        "overdueAt": text(schema.OVERDUE_AT),
    }
    clean, changed = sanitized(item)
    if changed:
        _warn_unreadable(entity)
    return clean


def _warn_unreadable(entity: dict[str, Any]) -> None:
    LOGGER.warning(
        "registry row %s holds text that is not valid Unicode; shown with U+FFFD",
        ascii(entity.get(schema.PARTITION_KEY)),
    )


def _json_or_none(raw: Any) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        LOGGER.warning("unreadable %s shown as null", schema.OPTIONS_JSON)
        return None


def _archive(entity: dict[str, Any]) -> dict[str, Any] | None:
    if not any(entity.get(name) not in (None, "") for name in ARCHIVE_FIELDS.values()):
        return None
    view: dict[str, Any] = {}
    for wire, name in ARCHIVE_FIELDS.items():
        value = entity.get(name)
        if isinstance(value, datetime):
            value = iso(value)
        elif isinstance(value, EntityProperty):
            value = value.value  # e.g. an Int64 the Tables SDK does not unwrap
        view[wire] = value if value != "" else None
    chunks = entity.get(schema.ARCHIVE_CHUNKS_JSON)
    if chunks:
        try:
            view["chunks"] = json.loads(chunks)
        except ValueError:
            view["chunks"] = None
    return view
