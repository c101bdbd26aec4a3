"""Bind a ``RecordingFileStatusUpdated`` event to the recording the registry knows.

Anyone who may send to the events queue chooses everything in an event: the subject (call id,
server call id, recording id) and the chunk locations. The metadata check (``source_check``)
only shows that the documents agree with the event, so on its own it proves nothing about which
recording they are. What the forger cannot choose is the registry: the API wrote the recording's
``ServerCallId`` when it started the recording, and verified (signed) ACS callbacks wrote its
``ServerCallId`` and the call's ``CorrelationId`` (the ``callId`` of its files). An event is
*bound* when

- its recording id has a registry row,
- the row has both a server call id and a call id,
- the event's server call id and call id are those of the row (compared canonically:
  :func:`same_server_call_id`, :func:`same_call_id`),

and only a bound event may write into the recording's folder, its registry row, or delete it
from ACS. ``source_check`` then makes every chunk's metadata agree with that call id. An unbound
event is quarantined instead (``archive.quarantine``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from recording_pipeline.archive.events import RecordingEvent
from recording_pipeline.registry import schema


@dataclass(frozen=True)
class Binding:
    """The event as the registry knows it, or why it cannot be bound."""

    #: The event with its call ids spelled as the registry has them (its folder and manifest
    #: then do not depend on how the event spelled them); None when unbound.
    event: RecordingEvent | None
    #: Why the event is not bound (for the quarantine log and manifest); None when bound.
    problem: str | None
    #: The registry says the recording is archived or erased: nothing more to copy.
    final: bool = False


def bind_event(event: RecordingEvent, table: TableClient) -> Binding:
    """Bind ``event`` to its registry row (see the module docstring).

    :raises Exception: what reading the registry raises (an outage is retried, never a verdict).
    """
    entity = _recording_entity(table, event.recording_id)
    if entity is None:
        return Binding(
            None, "its recording id is not in the registry (not started through the API)"
        )
    server_call_id = str(entity.get(schema.SERVER_CALL_ID) or "")
    call_id = str(entity.get(schema.CORRELATION_ID) or "")
    if not server_call_id or not call_id:
        missing = [
            name
            for name, value in (
                (schema.SERVER_CALL_ID, server_call_id),
                (schema.CORRELATION_ID, call_id),
            )
            if not value
        ]
        return Binding(
            None,
            f"the registry row has no {' and no '.join(missing)} yet (no verified callback "
            "named the call), so nothing binds the event to the recording",
        )
    if not same_server_call_id(event.server_call_id, server_call_id):
        return Binding(None, "the event's serverCallId is not the recording's in the registry")
    if not same_call_id(event.call_id, call_id):
        return Binding(None, "the event's callId is not the recording's call in the registry")
    bound = dataclasses.replace(event, call_id=call_id, server_call_id=server_call_id)
    return Binding(bound, None, entity.get(schema.ARCHIVE_STATUS) in schema.FINAL_STATUSES)


def same_call_id(first: str, second: str) -> bool:
    """Call ids are GUIDs: equal as GUIDs (case, braces, hyphens aside), else as strings."""
    return _canonical_call_id(first) == _canonical_call_id(second)


def same_server_call_id(first: str, second: str) -> bool:
    """Server call ids are base64url text: equal when they decode to the same bytes (with or
    without padding, in either base64 alphabet), else when equal as strings."""
    return _canonical_server_call_id(first) == _canonical_server_call_id(second)


def _canonical_call_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _canonical_server_call_id(value: str) -> bytes | str:
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return value


def _recording_entity(table: TableClient, recording_id: str) -> dict[str, Any] | None:
    keys = schema.recording_keys(recording_id)
    try:
        return dict(table.get_entity(keys[schema.PARTITION_KEY], keys[schema.ROW_KEY]))
    except ResourceNotFoundError:
        return None
