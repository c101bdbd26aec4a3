"""The recording state machine: how a start, an operation or a callback changes the entity.

A change is an :data:`EntityChange`, a function of the current entity that answers the
properties to merge (or None when it changes nothing), so the same change can be written
(``table.Registry.apply_changes``) or shown before it is written (:func:`preview`), as the API's
deferred writer does (``registry.writer``). Changes are idempotent: a callback carries its
CloudEvent id into the history and a redelivery of the same event changes nothing; an API change
already in the history (a retried write that had landed) is not added twice.

``State`` is what the API last did. Callbacks arrive late and out of order, so they are kept in
the history and set ``State`` only when there is none yet, or to report a failure; ``stopped``
and ``failed`` are final. When two instances write their changes out of order, the state of the
latest change by time wins, not the one that landed last.

Call ids: a callback token is not bound to its body (``api.known_recordings``), so the ids a
callback names are written only where a replayed token cannot move a recording to another call:
none when the recording's start named its own callback URL (ACS sends its callbacks there, so any
that arrive here are not ACS's), none when the callback's ``serverCallId`` is not the one the row
holds (when that server call came from an earlier callback, as after a start by call connection,
the two are a conflict); each id only when the row has none yet; and a ``correlationId`` other than
the stored one is not written but kept as ``CorrelationConflict`` with a loud log line, which stops
the archiver binding the recording's files (``archive.binding``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recording_pipeline.call_ids import same_call_id, same_server_call_id
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.recording_options import RecordingOptions, names_own_callback_url
from recording_pipeline.registry import schema

LOGGER = logging.getLogger(__name__)

#: States after which a recording never records again; late callbacks do not revive it.
TERMINAL_STATES = frozenset({"stopped", "failed"})
#: A Table string property holds 64 KiB; a longer history drops its oldest callback entries
#: first (see :func:`_bounded`), so callbacks cannot push out what the API did.
MAX_HISTORY_ENTRIES = 200
#: Logged when two callbacks name two calls for one recording (the infra's log alert matches it).
CALL_ID_CONFLICT_MARKER = "CALL_ID_CONFLICT"

#: The properties a change sets on the entity it is given, or None when it changes nothing.
EntityChange = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class RecordingMissingError(Exception):
    """The registry has no entity for the recording this write expected to exist."""


@dataclass(frozen=True)
class StateChange:
    """One entry of the state history."""

    state: str
    at: str
    source: str
    event_id: str | None = None

    def to_json(self) -> dict[str, str]:
        entry = {"state": self.state, "at": self.at, "source": self.source}
        if self.event_id is not None:
            entry["eventId"] = self.event_id
        return entry


def start_change(
    recording_id: str, options: RecordingOptions, *, state: str, at: datetime
) -> EntityChange:
    """The options and first state of a started recording (nothing, once they are recorded)."""

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is not None and current.get(schema.OPTIONS_JSON):
            return None  # already recorded (a retried start): nothing to change
        properties = {
            schema.RECORDING_ID: recording_id,
            # a start by call connection keeps the server call a callback already wrote
            schema.SERVER_CALL_ID: options.server_call_id
            or str((current or {}).get(schema.SERVER_CALL_ID) or ""),
            schema.CALL_CONNECTION_ID: options.call_connection_id or "",
            schema.CONTENT_TYPE: options.content,
            schema.CHANNEL_TYPE: options.channel,
            schema.FORMAT_TYPE: options.format,
            schema.OPTIONS_JSON: json.dumps(options.to_wire(), sort_keys=True),
        }
        if current is not None and current.get(schema.CORRELATION_ID):
            # a callback overtook this write: its call id stands only if ACS sends this
            # recording's callbacks here and the callback named this start's server call
            called = str(current.get(schema.SERVER_CALL_ID) or "")
            other_call = bool(options.server_call_id and called) and not same_server_call_id(
                called, str(options.server_call_id)
            )
            if options.callback_url or other_call:
                properties[schema.CORRELATION_ID] = ""
        return _with_state(current, properties, StateChange(state, iso(at), "api"), is_start=True)

    return change


def state_change(
    recording_id: str,
    change: StateChange,
    *,
    failure: str | None = None,
    create_if_missing: bool = False,
    call_ids: dict[str, str] | None = None,
) -> EntityChange:
    """``change`` appended to the history (nothing, when the history has it already).

    :param call_ids: call ids by property name (``schema.SERVER_CALL_ID``, ...), set as
        :func:`callback_call_ids` allows.
    :raises RecordingMissingError: (when applied) on no entity and ``create_if_missing`` off.
    """

    def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None and not create_if_missing:
            raise RecordingMissingError(recording_id)
        if _has_change(current, change) or _failure_after_the_end(current, change):
            return None
        properties: dict[str, Any] = {
            schema.RECORDING_ID: recording_id,
            **callback_call_ids(recording_id, current, call_ids or {}, change),
        }
        if failure is not None:
            properties[schema.FAILURE_REASON] = failure[:1000]
        return _with_state(current, properties, change, is_start=False)

    return apply


def callback_call_ids(
    recording_id: str,
    current: dict[str, Any] | None,
    call_ids: dict[str, str],
    change: StateChange,
) -> dict[str, Any]:
    """The call ids a verified callback may write (see "Call ids" in the module docstring)."""
    entity = current or {}
    if sends_callbacks_elsewhere(entity):
        if any(call_ids.values()):
            LOGGER.warning(
                "callback ids for recording %r ignored: its start named its own callback URL",
                recording_id,
            )
        return {}
    if _differs(entity, call_ids, schema.SERVER_CALL_ID, same_server_call_id):
        if _start_named_the_server_call(entity):
            LOGGER.warning(
                "callback ids for recording %r ignored: its serverCallId is not the recording's",
                recording_id,
            )
            return {}
        # The stored server call came from an earlier callback (a start by call connection,
        # or no start here): which of the two is ACS's cannot be told, so neither binds.
        return _conflict(recording_id, entity, change, serverCallId=call_ids[schema.SERVER_CALL_ID])
    properties = {name: value for name, value in call_ids.items() if value and not entity.get(name)}
    correlation_id = call_ids.get(schema.CORRELATION_ID) or ""
    if _differs(entity, call_ids, schema.CORRELATION_ID, same_call_id):
        properties.update(_conflict(recording_id, entity, change, correlationId=correlation_id))
    return properties


def _conflict(
    recording_id: str, entity: dict[str, Any], change: StateChange, **named: str
) -> dict[str, Any]:
    """Callbacks name two calls for the recording: say so loudly and keep the first conflict,
    which stops the archiver binding the recording's files (``archive.binding``)."""
    ((name, value),) = named.items()
    LOGGER.error(
        "%s callbacks name two calls for recording %r (%s %s stored, %s now): the archiver "
        "binds none of its files until a person decides",
        CALL_ID_CONFLICT_MARKER,
        recording_id,
        name,
        entity.get(schema.SERVER_CALL_ID if name == "serverCallId" else schema.CORRELATION_ID),
        value,
    )
    if entity.get(schema.CORRELATION_CONFLICT):
        return {}
    return {
        schema.CORRELATION_CONFLICT: json.dumps(
            {name: value, "eventId": change.event_id, "at": change.at}
        )
    }


def _start_named_the_server_call(entity: dict[str, Any]) -> bool:
    """Whether the row's server call id was written by this API's start (a start by server call,
    not by call connection), so a callback cannot have chosen it."""
    return bool(entity.get(schema.OPTIONS_JSON)) and not entity.get(schema.CALL_CONNECTION_ID)


def _differs(
    entity: dict[str, Any],
    call_ids: dict[str, str],
    name: str,
    same: Callable[[str, str], bool],
) -> bool:
    """Whether the callback names ``name`` and the entity holds another one."""
    named, stored = call_ids.get(name) or "", str(entity.get(name) or "")
    return bool(named and stored) and not same(named, stored)


def sends_callbacks_elsewhere(entity: dict[str, Any] | None) -> bool:
    """Whether the recording's start named its own callback URL (``OptionsJson``)."""
    try:
        options = json.loads(str((entity or {}).get(schema.OPTIONS_JSON) or "{}"))
    except ValueError:
        return False
    return names_own_callback_url(options)


def preview(
    entity: dict[str, Any] | None, changes: Sequence[EntityChange]
) -> dict[str, Any] | None:
    """``entity`` as it will be once ``changes`` are written (the same object when none apply)."""
    return fold(entity, changes)[0]


def fold(
    entity: dict[str, Any] | None, changes: Sequence[EntityChange]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Apply ``changes`` in order: the resulting entity and every property they set."""
    written: dict[str, Any] = {}
    for change in changes:
        update = change(entity)
        if update:
            written.update(update)
            entity = {**(entity or {}), **update}
    return entity, written


def history(entity: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The entity's state history (empty when it has none or it cannot be read)."""
    raw = (entity or {}).get(schema.STATE_HISTORY_JSON) or "[]"
    try:
        entries = json.loads(raw)
    except ValueError:
        LOGGER.warning("unreadable StateHistoryJson replaced")
        return []
    return entries if isinstance(entries, list) else []


def _with_state(
    current: dict[str, Any] | None,
    properties: dict[str, Any],
    change: StateChange,
    *,
    is_start: bool,
) -> dict[str, Any]:
    entries = history(current)
    current_state = (current or {}).get(schema.STATE) or None
    next_state = _next_state(current_state, change, is_start=is_start)
    if change.source != "callback" and _api_changed_later(entries, change.at):
        next_state = current_state or next_state  # a later API change already set the state
    entries.append(change.to_json())
    entries.sort(key=lambda entry: str(entry.get("at", "")))  # stable: ties keep arrival order
    now = iso(utc_now())
    update = {
        **properties,
        schema.STATE: next_state,
        schema.STATE_HISTORY_JSON: json.dumps(_bounded(entries)),
        schema.UPDATED_AT: now,
    }
    if current is None or not current.get(schema.CREATED_AT):
        update[schema.CREATED_AT] = now
    return update


def _bounded(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most :data:`MAX_HISTORY_ENTRIES` entries, in time order: the oldest callback entries go
    first, so a flood of callbacks (a replayed token can send many) never erases the API's own
    entries, the audit trail of what was asked; only a history of API entries alone longer than
    the cap loses its oldest."""
    excess = len(entries) - MAX_HISTORY_ENTRIES
    if excess <= 0:
        return entries
    callbacks = [index for index, entry in enumerate(entries) if entry.get("source") == "callback"]
    dropped = set(callbacks[:excess])
    kept = [entry for index, entry in enumerate(entries) if index not in dropped]
    return kept[len(kept) - MAX_HISTORY_ENTRIES :]


def _next_state(current: str | None, change: StateChange, *, is_start: bool) -> str:
    """``State`` is what the API last did; callbacks only fill a gap or report a failure.

    Callbacks arrive late and out of order (a start's "active" can land after the API recorded
    a pause), so a RecordingStateChanged callback never overrides a state the API wrote; it is
    kept in the history. StartRecordingFailed is news the API cannot have, so it sets
    ``failed``. Terminal states stay terminal against late starts and callbacks.
    """
    if current is None:
        return change.state
    if current in TERMINAL_STATES and (is_start or change.source == "callback"):
        return current
    if change.source == "callback":
        return change.state if change.state == "failed" else current
    return change.state


def _api_changed_later(entries: list[dict[str, Any]], at: str) -> bool:
    """Whether an API change made after ``at`` is already recorded.

    Two instances can write a recording's changes out of order (each writes after answering);
    the state is the one of the latest change by time, not by arrival.
    """
    return any(
        entry.get("source") != "callback" and str(entry.get("at", "")) > at for entry in entries
    )


def _failure_after_the_end(entity: dict[str, Any] | None, change: StateChange) -> bool:
    """A failure reported for a recording that has ended changes nothing.

    ``StartRecordingFailed`` is news only while a recording may still be starting; once it is
    ``stopped`` or ``failed``, or archived (ACS publishes files only after the end), a failure
    can only be a replay, and a ``failed`` entry would contradict what happened.
    """
    if change.state != "failed" or entity is None:
        return False
    return entity.get(schema.STATE) in TERMINAL_STATES or bool(entity.get(schema.ARCHIVE_STATUS))


def _has_change(entity: dict[str, Any] | None, change: StateChange) -> bool:
    """A callback is known by its event id; an API change by its whole entry (a retry of a
    write that had landed carries the same state, time and source)."""
    if change.event_id is not None:
        return any(entry.get("eventId") == change.event_id for entry in history(entity))
    wanted = change.to_json()
    return any(entry == wanted for entry in history(entity))
