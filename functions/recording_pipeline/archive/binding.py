"""Bind a ``RecordingFileStatusUpdated`` event to the recording the registry knows.

Anyone who may send to the events queue chooses everything in an event: the subject (call id,
server call id, recording id) and the chunk locations. The metadata check (``source_check``)
only shows that the documents agree with the event, so on its own it proves nothing about which
recording they are. What the forger cannot choose is the registry: the API wrote the recording's
``ServerCallId`` when it started the recording, and verified (signed) ACS callbacks wrote its
``ServerCallId`` and the call's ``CorrelationId`` (the ``callId`` of its files). An event is
*bound* when

- its recording id has a registry row,
- the row has both a server call id and a call id, and no ``CorrelationConflict`` (two
  callbacks named two different calls: one of them was forged, and the registry cannot say
  which, see ``registry.states``),
- the event's server call id and call id are those of the row (compared canonically:
  ``call_ids.same_server_call_id``, ``call_ids.same_call_id``),

and only a bound event may write into the recording's folder, its registry row, or delete it
from ACS. ``source_check`` then makes every chunk's metadata agree with that call id. An unbound
event is quarantined instead (``archive.quarantine``), with one exception: an event whose
recording and server call match a row that has no call id *yet* (and whose start did not name
its own callback URL: ACS sends those callbacks elsewhere, so they never come here) is not a
verdict, because the file event may overtake the callback that writes the call id.
:func:`bind_event` raises :class:`CallIdPendingError` for it, so the host redelivers it, and the
poison queue keeps it for the reconciler's replay if the callback does not come within the
host's attempts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from recording_pipeline.archive.events import RecordingEvent
from recording_pipeline.call_ids import same_call_id, same_server_call_id
from recording_pipeline.registry import schema
from recording_pipeline.registry.states import sends_callbacks_elsewhere


class CallIdPendingError(Exception):
    """The event names a known recording and its server call, but the registry has no call id
    yet: the callback that writes it may arrive after the file event (a redelivery may bind)."""

    def __init__(self, recording_id: str) -> None:
        super().__init__(
            f"recording {recording_id!r} has no {schema.CORRELATION_ID} in the registry yet "
            "(no verified callback named its call); the event waits for it"
        )


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

    :raises CallIdPendingError: the row is the event's recording and call, but no verified
        callback has named the call's id yet (it may still come: a retry may bind).
    :raises Exception: what reading the registry raises (an outage is retried, never a verdict).
    """
    entity = _recording_entity(table, event.recording_id)
    if entity is None:
        return Binding(
            None, "its recording id is not in the registry (not started through the API)"
        )
    server_call_id = str(entity.get(schema.SERVER_CALL_ID) or "")
    call_id = str(entity.get(schema.CORRELATION_ID) or "")
    if not server_call_id:
        return Binding(
            None,
            f"the registry row has no {schema.SERVER_CALL_ID} (no start or verified callback "
            "named the call), so nothing binds the event to the recording",
        )
    if not same_server_call_id(event.server_call_id, server_call_id):
        return Binding(None, "the event's serverCallId is not the recording's in the registry")
    if entity.get(schema.CORRELATION_CONFLICT):
        return Binding(
            None,
            f"callbacks named two call ids for the recording ({schema.CORRELATION_CONFLICT}), "
            "so the registry cannot say which call's files are the recording's",
        )
    if not call_id and sends_callbacks_elsewhere(entity):
        return Binding(
            None,
            "the recording's start named its own callback URL, so no verified callback here "
            "names its call, and nothing binds the event to the recording",
        )
    if not call_id:
        raise CallIdPendingError(event.recording_id)
    if not same_call_id(event.call_id, call_id):
        return Binding(None, "the event's callId is not the recording's call in the registry")
    bound = dataclasses.replace(event, call_id=call_id, server_call_id=server_call_id)
    return Binding(bound, None, entity.get(schema.ARCHIVE_STATUS) in schema.FINAL_STATUSES)


def _recording_entity(table: TableClient, recording_id: str) -> dict[str, Any] | None:
    keys = schema.recording_keys(recording_id)
    try:
        return dict(table.get_entity(keys[schema.PARTITION_KEY], keys[schema.ROW_KEY]))
    except ResourceNotFoundError:
        return None
