"""The recording registry: one Table entity per recording, written by the API and the archiver.

Schema and ownership are fixed in ``docs/architecture.md``. Two rules make concurrent writers
safe without locks:

- every write is ``UpdateMode.MERGE``, so the API never erases the archiver's ``Archive*``
  properties and the archiver never erases the API's;
- the state history is read-modified-written under the entity's ETag and retried on 412, so a
  callback and an API call that land at the same moment both end up in the history.

Writes are idempotent: a callback carries its CloudEvent id into the history and a redelivery
of the same event changes nothing; an API change already in the history (a retried write that
had landed) is not added twice.

A write is an :data:`EntityChange`, a function of the current entity, so the same change can be
written (:meth:`Registry.apply_changes`) or shown before it is written (``pending`` of
:meth:`Registry.get`), as the API's deferred writer does (``registry_writer``).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EntityProperty, TableClient, UpdateMode

from recording_pipeline.clock import iso, utc_now
from recording_pipeline.ids import decode_id, encode_id
from recording_pipeline.recording_options import RecordingOptions

LOGGER = logging.getLogger(__name__)

RECORDING_ROW_KEY = "recording"
IDEMPOTENCY_PARTITION = "idempotency"
#: States after which a recording never records again; late callbacks do not revive it.
TERMINAL_STATES = frozenset({"stopped", "failed"})
#: A Table string property holds 64 KiB; a recording that flips state more often keeps the tail.
MAX_HISTORY_ENTRIES = 200
_MAX_ETAG_ATTEMPTS = 12
#: Recording entities this process remembers (with their ETags) to skip a read before a write.
CACHED_ENTITIES = 1024

_ARCHIVE_FIELDS = {
    "status": "ArchiveStatus",
    "callId": "CallId",
    "blobPrefix": "ArchiveBlobPrefix",
    "manifestBlob": "ArchiveManifestBlob",
    "chunkCount": "ArchiveChunkCount",
    "totalBytes": "ArchiveTotalBytes",
    "archivedAt": "ArchivedAt",
    "error": "ArchiveError",
}


#: Properties a list item needs; the history and chunk lists stay in the table.
_SUMMARY_PROPERTIES = [
    "PartitionKey",
    "RecordingId",
    "ServerCallId",
    "CallConnectionId",
    "ContentType",
    "ChannelType",
    "FormatType",
    "State",
    "CreatedAt",
    "UpdatedAt",
    "ArchiveStatus",
    "ArchivedAt",
    "ArchiveChunkCount",
    "ArchiveTotalBytes",
    "ParticipantId",
]
#: Table round trips one list page may take to fill ``limit`` items when a filter is sparse.
_MAX_LIST_ROUND_TRIPS = 5

#: The properties a change sets on the entity it is given, or None when it changes nothing.
EntityChange = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class RegistryUnavailableError(Exception):
    """The table could not be read or written (network, throttling, outage)."""


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


@dataclass(frozen=True)
class IdempotencyClaim:
    """The first use of an Idempotency-Key: its request fingerprint and, once known, its result."""

    request_hash: str
    created_at: datetime
    recording_id: str | None
    is_new: bool


class Registry:
    """Reads and writes recording entities and idempotency entities in one table.

    :param table: a client for the registry table (see ``clients.registry_table_client``).
    """

    def __init__(self, table: TableClient) -> None:
        if table is None:
            raise ValueError("table can not be None")
        self._table = table
        self._cache = _EntityCache(CACHED_ENTITIES)

    def ensure_table(self) -> None:
        """Create the table when missing (locally; in Azure the Pulumi program creates it).

        :raises RegistryUnavailableError: when the table service cannot be reached.
        """
        with _unavailable_on_error():
            try:
                self._table.create_table()
            except ResourceExistsError:
                LOGGER.debug("registry table already exists")

    def get(
        self, recording_id: str, *, pending: Sequence[EntityChange] = ()
    ) -> RegistryEntry | None:
        """The stored entity, with ``pending`` (changes made but not yet written) on top.

        A change ``pending`` holds that is stored already is not applied twice.

        :raises RegistryUnavailableError: when the table cannot be read.
        """
        entity = preview(self._read(recording_id), pending)
        return None if entity is None else _entry(entity)

    def peek(
        self, recording_id: str, *, pending: Sequence[EntityChange] = ()
    ) -> RegistryEntry | None:
        """This process's last copy of the entity, with ``pending`` on top; never reads the table.

        None when this process has neither. The copy may be stale (another instance or the
        archiver wrote since); callers use it only where a stale copy costs a retry or a second
        look, never a wrong answer.
        """
        entity = preview(self._cache.get(recording_id), pending)
        return None if entity is None else _entry(entity)

    def apply_changes(
        self, recording_id: str, changes: Sequence[EntityChange], *, creates: bool = False
    ) -> None:
        """Write several changes of one recording as ONE conditional write, in their order.

        Starts from this process's cached copy when there is one; else, with ``creates`` (a
        start is among the changes), tries a create first, and otherwise reads first. A wrong
        guess costs one failed conditional write, never a lost update.

        :raises RegistryUnavailableError: when the table cannot be written.
        """
        cached = self._cache.get(recording_id)

        def combined(current: dict[str, Any] | None) -> dict[str, Any] | None:
            return _fold(current, changes)[1] or None

        self._modify(
            recording_id, combined, known=cached, assume_missing=cached is None and creates
        )

    def claim_idempotency(self, key: str, request_hash: str, *, at: datetime) -> IdempotencyClaim:
        """Remember the first use of ``key``; answer the earlier claim when there is one.

        :raises RegistryUnavailableError: when the table cannot be used.
        """
        entity = {
            "PartitionKey": IDEMPOTENCY_PARTITION,
            "RowKey": encode_id(key),
            "RequestHash": request_hash,
            "CreatedAt": iso(at),
        }
        with _unavailable_on_error():
            try:
                self._table.create_entity(entity)
                return IdempotencyClaim(request_hash, at, None, is_new=True)
            except ResourceExistsError:
                existing = self._table.get_entity(IDEMPOTENCY_PARTITION, encode_id(key))
        return IdempotencyClaim(
            request_hash=str(existing.get("RequestHash", "")),
            created_at=_parse_iso(str(existing.get("CreatedAt", ""))) or at,
            recording_id=existing.get("RecordingId") or None,
            is_new=False,
        )

    def complete_idempotency(self, key: str, recording_id: str) -> None:
        """:raises RegistryUnavailableError: when the table cannot be written."""
        with _unavailable_on_error():
            self._table.upsert_entity(
                {
                    "PartitionKey": IDEMPOTENCY_PARTITION,
                    "RowKey": encode_id(key),
                    "RecordingId": recording_id,
                },
                mode=UpdateMode.MERGE,
            )

    def list_recordings(
        self,
        *,
        limit: int,
        position: dict[str, str | None] | None = None,
        server_call_id: str | None = None,
        state: str | None = None,
        archive_status: str | None = None,
    ) -> RecordingPage:
        """Up to ``limit`` recording summaries in the table's key order, filtered by the service.

        Table Storage returns entities ordered by PartitionKey (the encoded recording id) and
        offers no other order; sorting by time would mean reading every entity, so pages follow
        the key order, which is stable while paging. A sparse filter can make the service answer
        with few or no entities and a continuation; this method asks again (at most
        ``_MAX_LIST_ROUND_TRIPS`` times) and may still answer fewer than ``limit`` items with a
        next position, so callers must follow the position until it is None.

        :param position: where to continue: ``{"PartitionKey", "RowKey"}`` from a previous page.
        :raises RegistryUnavailableError: when the table cannot be read.
        """
        clauses = ["RowKey eq @row", "PartitionKey ne @idempotency"]
        parameters: dict[str, Any] = {
            "row": RECORDING_ROW_KEY,
            "idempotency": IDEMPOTENCY_PARTITION,
        }
        for name, prop, value in (
            ("server", "ServerCallId", server_call_id),
            ("archive", "ArchiveStatus", archive_status),
        ):
            if value is not None:
                clauses.append(f"{prop} eq @{name}")
                parameters[name] = value
        if state is not None:
            clauses.append(_state_clause(state, parameters))
        query = " and ".join(clauses)
        items: list[dict[str, Any]] = []
        for _ in range(_MAX_LIST_ROUND_TRIPS):
            with _unavailable_on_error():
                pages = self._table.query_entities(
                    query,
                    parameters=parameters,
                    select=_SUMMARY_PROPERTIES,
                    results_per_page=limit - len(items),
                ).by_page(continuation_token=position)  # type: ignore[arg-type]  # a dict, in fact
                entities = list(next(pages, []))
                position = pages.continuation_token  # type: ignore[attr-defined]
            # A participant-index row has RowKey = encode_id(recordingId); a recording whose id
            # is literally "recording" would put one under this filter.
            items.extend(
                _summary(e)
                for e in entities
                if not e.get("ParticipantId") and state in (None, _effective_state(e))
            )
            if position is None or len(items) >= limit:
                break
        return RecordingPage(items[:limit], position or None)

    def _read(self, recording_id: str) -> dict[str, Any] | None:
        version = self._cache.version(recording_id)
        with _unavailable_on_error():
            try:
                entity = self._table.get_entity(encode_id(recording_id), RECORDING_ROW_KEY)
            except ResourceNotFoundError:
                self._cache.discard_read(recording_id, version)
                return None
        read = {**entity, "__etag": entity.metadata.get("etag")}
        self._cache.put_read(recording_id, read, version)
        return read

    def _modify(
        self,
        recording_id: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        *,
        known: dict[str, Any] | None = None,
        assume_missing: bool = False,
    ) -> None:
        """Read-modify-write under the ETag; on a lost race, read again and redo the change.

        ``known`` (an entity read earlier) or ``assume_missing`` (try a create first) skip the
        first read; a wrong guess costs one failed conditional write, never a lost update.
        """
        current = known
        read_needed = known is None and not assume_missing
        for attempt in range(_MAX_ETAG_ATTEMPTS):
            if attempt:
                # Jittered backoff: writers that lost the same race do not collide again at once.
                time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - jitter, not a secret
            if read_needed:
                current = self._read(recording_id)
            read_needed = True
            update = change(current)
            if update is None:
                return
            etag = self._write(recording_id, update, current)
            if etag is not None:
                self._cache.put(recording_id, {**(current or {}), **update, "__etag": etag})
                return
        raise RegistryUnavailableError(f"too many concurrent updates of recording {recording_id!r}")

    def _write(
        self, recording_id: str, update: dict[str, Any], current: dict[str, Any] | None
    ) -> str | None:
        """The new ETag when written; None when another writer got there first (retry)."""
        entity = {"PartitionKey": encode_id(recording_id), "RowKey": RECORDING_ROW_KEY, **update}
        with _unavailable_on_error():
            try:
                if current is None:
                    metadata = self._table.create_entity(entity)
                else:
                    metadata = self._table.update_entity(
                        entity,
                        mode=UpdateMode.MERGE,
                        etag=current["__etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                return None
        return str(metadata.get("etag") or "")


def start_change(
    recording_id: str, options: RecordingOptions, *, state: str, at: datetime
) -> EntityChange:
    """The options and first state of a started recording (nothing, once they are recorded)."""

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is not None and current.get("OptionsJson"):
            return None  # already recorded (a retried start): nothing to change
        properties = {
            "RecordingId": recording_id,
            "ServerCallId": options.server_call_id or "",
            "CallConnectionId": options.call_connection_id or "",
            "ContentType": options.content,
            "ChannelType": options.channel,
            "FormatType": options.format,
            "OptionsJson": json.dumps(options.to_wire(), sort_keys=True),
        }
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

    :raises RecordingMissingError: (when applied) on no entity and ``create_if_missing`` off.
    """

    def apply(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None and not create_if_missing:
            raise RecordingMissingError(recording_id)
        if _has_change(current, change):
            return None
        properties: dict[str, Any] = {"RecordingId": recording_id}
        for name, value in (call_ids or {}).items():
            if value and not (current or {}).get(name):
                properties[name] = value
        if failure is not None:
            properties["FailureReason"] = failure[:1000]
        return _with_state(current, properties, change, is_start=False)

    return apply


def preview(
    entity: dict[str, Any] | None, changes: Sequence[EntityChange]
) -> dict[str, Any] | None:
    """``entity`` as it will be once ``changes`` are written (the same object when none apply)."""
    return _fold(entity, changes)[0]


def _fold(
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


class _EntityCache:
    """A small thread-safe LRU of entities by recording id (this process's last copy).

    Each recording's copy has a version that every write bumps: a read stores its entity only
    if no write was stored since the read began, so an older entity never replaces a newer one.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entities: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, recording_id: str) -> dict[str, Any] | None:
        with self._lock:
            entity = self._entities.get(recording_id)
            if entity is not None:
                self._entities.move_to_end(recording_id)
            return entity

    def version(self, recording_id: str) -> int:
        with self._lock:
            return self._versions.get(recording_id, 0)

    def put(self, recording_id: str, entity: dict[str, Any]) -> None:
        """Store what this process just wrote."""
        with self._lock:
            self._store(recording_id, entity)

    def put_read(self, recording_id: str, entity: dict[str, Any], version: int) -> None:
        """Store what a read that began at ``version`` found, unless a write was stored since."""
        with self._lock:
            if self._versions.get(recording_id, 0) == version:
                self._store(recording_id, entity)

    def discard_read(self, recording_id: str, version: int) -> None:
        """Forget the copy: a read that began at ``version`` found no entity (unless a write
        was stored since)."""
        with self._lock:
            if self._versions.get(recording_id, 0) == version:
                self._entities.pop(recording_id, None)

    def _store(self, recording_id: str, entity: dict[str, Any]) -> None:
        self._entities[recording_id] = entity
        self._entities.move_to_end(recording_id)
        self._versions[recording_id] = self._versions.get(recording_id, 0) + 1
        while len(self._entities) > self._capacity:
            evicted, _ = self._entities.popitem(last=False)
            self._versions.pop(evicted, None)


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """Expected outcomes (exists, not found, modified) pass through; anything else is an outage."""
    try:
        yield
    except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
        raise
    except AzureError as error:
        raise RegistryUnavailableError(type(error).__name__) from error


def _with_state(
    current: dict[str, Any] | None,
    properties: dict[str, Any],
    change: StateChange,
    *,
    is_start: bool,
) -> dict[str, Any]:
    history = _history(current)
    current_state = (current or {}).get("State") or None
    next_state = _next_state(current_state, change, is_start=is_start)
    if change.source != "callback" and _api_changed_later(history, change.at):
        next_state = current_state or next_state  # a later API change already set the state
    history.append(change.to_json())
    history.sort(key=lambda entry: str(entry.get("at", "")))  # stable: ties keep arrival order
    now = iso(utc_now())
    update = {
        **properties,
        "State": next_state,
        "StateHistoryJson": json.dumps(history[-MAX_HISTORY_ENTRIES:]),
        "UpdatedAt": now,
    }
    if current is None or not current.get("CreatedAt"):
        update["CreatedAt"] = now
    return update


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


def _api_changed_later(history: list[dict[str, Any]], at: str) -> bool:
    """Whether an API change made after ``at`` is already recorded.

    Two instances can write a recording's changes out of order (each writes after answering);
    the state is the one of the latest change by time, not by arrival.
    """
    return any(
        entry.get("source") != "callback" and str(entry.get("at", "")) > at for entry in history
    )


def _effective_state(entity: dict[str, Any]) -> str:
    """The registry state, counting a recording with an archive as ``stopped``.

    ACS publishes a recording's files only after the recording has ended, by a stop or because
    the call ended. A hang-up reaches this app through no API call, so ``State`` can still say
    ``active``; the archive fields (written by the archiver) prove it is over.
    """
    state = str(entity.get("State") or "unknown")
    if state not in TERMINAL_STATES and entity.get("ArchiveStatus"):
        return "stopped"
    return state


def _state_clause(state: str, parameters: dict[str, Any]) -> str:
    """Server-side part of a state filter; :func:`_effective_state` finishes it client-side."""
    parameters["state"] = state
    if state != "stopped":
        return "State eq @state"
    parameters["failed"] = "failed"
    parameters["anyArchiveStatus"] = "a"  # every archive status sorts after "a"
    # Spaces before ")": the SDK's parameter substitution would read "@failed))" as one name.
    return "(State eq @state or (ArchiveStatus ge @anyArchiveStatus and State ne @failed ) )"


def _history(entity: dict[str, Any] | None) -> list[dict[str, Any]]:
    raw = (entity or {}).get("StateHistoryJson") or "[]"
    try:
        history = json.loads(raw)
    except ValueError:
        LOGGER.warning("unreadable StateHistoryJson replaced")
        return []
    return history if isinstance(history, list) else []


def _has_change(entity: dict[str, Any] | None, change: StateChange) -> bool:
    """A callback is known by its event id; an API change by its whole entry (a retry of a
    write that had landed carries the same state, time and source)."""
    if change.event_id is not None:
        return any(entry.get("eventId") == change.event_id for entry in _history(entity))
    wanted = change.to_json()
    return any(entry == wanted for entry in _history(entity))


def _entry(entity: dict[str, Any]) -> RegistryEntry:
    options_json = entity.get("OptionsJson")
    return RegistryEntry(
        recording_id=str(entity.get("RecordingId", "")),
        state=_effective_state(entity),
        history=_history(entity),
        server_call_id=entity.get("ServerCallId") or None,
        call_connection_id=entity.get("CallConnectionId") or None,
        options=json.loads(options_json) if options_json else None,
        created_at=entity.get("CreatedAt") or None,
        updated_at=entity.get("UpdatedAt") or None,
        failure=entity.get("FailureReason") or None,
        archive=_archive(entity),
    )


def _summary(entity: dict[str, Any]) -> dict[str, Any]:
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

    recording_id = text("RecordingId") or decode_id(str(entity.get("PartitionKey", "")))
    return {
        "recordingId": recording_id,
        "serverCallId": text("ServerCallId"),
        "callConnectionId": text("CallConnectionId"),
        "state": _effective_state(entity),
        "content": text("ContentType"),
        "channel": text("ChannelType"),
        "format": text("FormatType"),
        "createdAt": text("CreatedAt"),
        "updatedAt": text("UpdatedAt"),
        "archiveStatus": text("ArchiveStatus"),
        "archivedAt": text("ArchivedAt"),
        "chunkCount": number("ArchiveChunkCount"),
        "totalBytes": number("ArchiveTotalBytes"),
    }


def _archive(entity: dict[str, Any]) -> dict[str, Any] | None:
    if not any(entity.get(name) not in (None, "") for name in _ARCHIVE_FIELDS.values()):
        return None
    view: dict[str, Any] = {}
    for wire, name in _ARCHIVE_FIELDS.items():
        value = entity.get(name)
        if isinstance(value, datetime):
            value = iso(value)
        elif isinstance(value, EntityProperty):
            value = value.value  # e.g. an Int64 the Tables SDK does not unwrap
        view[wire] = value if value != "" else None
    chunks = entity.get("ArchiveChunksJson")
    if chunks:
        try:
            view["chunks"] = json.loads(chunks)
        except ValueError:
            view["chunks"] = None
    return view


def _parse_iso(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
