"""The registry table: one entity per recording, written by the API and the archiver.

Schema and ownership are fixed in ``docs/architecture.md`` (names in ``registry.schema``). Two rules
make concurrent writers safe without locks:

- every write is ``UpdateMode.MERGE``, so the API never erases the archiver's ``Archive*``
  properties and the archiver never erases the API's;
- the state history is read-modified-written under the entity's ETag and retried on 412, so a
  callback and an API call that land at the same moment both end up in the history.

What a write changes is decided by the state machine (``registry.states``) and what a read shows
by ``registry.views``; this module reads, writes and caches entities. The cache keeps this
process's last copy of each recording (with its ETag), so most writes need no read first.
"""

from __future__ import annotations

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
from azure.data.tables import TableClient, UpdateMode

from recording_pipeline.clock import iso
from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema, views
from recording_pipeline.registry.pending import PendingIndex
from recording_pipeline.registry.states import EntityChange, fold, preview
from recording_pipeline.registry.views import RecordingPage, RegistryEntry

LOGGER = logging.getLogger(__name__)

_MAX_ETAG_ATTEMPTS = 12
#: Recording entities this process remembers (with their ETags) to skip a read before a write.
CACHED_ENTITIES = 1024
#: Table round trips one list page may take to fill ``limit`` items when a filter is sparse.
_MAX_LIST_ROUND_TRIPS = 5


class RegistryUnavailableError(Exception):
    """The table could not be read or written (network, throttling, outage)."""


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
        return None if entity is None else views.entry(entity)

    def peek(
        self, recording_id: str, *, pending: Sequence[EntityChange] = ()
    ) -> RegistryEntry | None:
        """This process's last copy of the entity, with ``pending`` on top; never reads the table.

        None when this process has neither. The copy may be stale (another instance or the
        archiver wrote since); callers use it only where a stale copy costs a retry or a second
        look, never a wrong answer.
        """
        entity = preview(self._cache.get(recording_id), pending)
        return None if entity is None else views.entry(entity)

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
            return fold(current, changes)[1] or None

        self._modify(
            recording_id, combined, known=cached, assume_missing=cached is None and creates
        )

    def claim_idempotency(self, key: str, request_hash: str, *, at: datetime) -> IdempotencyClaim:
        """Remember the first use of ``key``; answer the earlier claim when there is one.

        :raises RegistryUnavailableError: when the table cannot be used.
        """
        entity = {
            schema.PARTITION_KEY: schema.IDEMPOTENCY_PARTITION,
            schema.ROW_KEY: encode_id(key),
            schema.REQUEST_HASH: request_hash,
            schema.CREATED_AT: iso(at),
        }
        with _unavailable_on_error():
            try:
                self._table.create_entity(entity)
                return IdempotencyClaim(request_hash, at, None, is_new=True)
            except ResourceExistsError:
                existing = self._table.get_entity(schema.IDEMPOTENCY_PARTITION, encode_id(key))
        return IdempotencyClaim(
            request_hash=str(existing.get(schema.REQUEST_HASH, "")),
            created_at=_parse_iso(str(existing.get(schema.CREATED_AT, ""))) or at,
            recording_id=existing.get(schema.RECORDING_ID) or None,
            is_new=False,
        )

    def complete_idempotency(self, key: str, recording_id: str) -> None:
        """:raises RegistryUnavailableError: when the table cannot be written."""
        with _unavailable_on_error():
            self._table.upsert_entity(
                {
                    schema.PARTITION_KEY: schema.IDEMPOTENCY_PARTITION,
                    schema.ROW_KEY: encode_id(key),
                    schema.RECORDING_ID: recording_id,
                },
                mode=UpdateMode.MERGE,
            )

    def index_stopped(self, recording_id: str, stopped_at: str) -> None:
        """Add the recording to the reconciler's "stopped, not yet archived" index
        (``registry.pending``); idempotent.

        :raises RegistryUnavailableError: when the table cannot be written.
        """
        with _unavailable_on_error():
            PendingIndex(self._table).add_stopped(recording_id, stopped_at)

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
        clauses = [f"{schema.ROW_KEY} eq @row", f"{schema.PARTITION_KEY} ne @idempotency"]
        parameters: dict[str, Any] = {
            "row": schema.RECORDING_ROW_KEY,
            "idempotency": schema.IDEMPOTENCY_PARTITION,
        }
        for name, prop, value in (
            ("server", schema.SERVER_CALL_ID, server_call_id),
            ("archive", schema.ARCHIVE_STATUS, archive_status),
        ):
            if value is not None:
                clauses.append(f"{prop} eq @{name}")
                parameters[name] = value
        if state is not None:
            clauses.append(views.state_filter(state, parameters))
        query = " and ".join(clauses)
        items: list[dict[str, Any]] = []
        for _ in range(_MAX_LIST_ROUND_TRIPS):
            with _unavailable_on_error():
                pages = self._table.query_entities(
                    query,
                    parameters=parameters,
                    select=views.SUMMARY_PROPERTIES,
                    results_per_page=limit - len(items),
                ).by_page(continuation_token=position)  # type: ignore[arg-type]  # a dict, in fact
                entities = list(next(pages, []))
                position = pages.continuation_token  # type: ignore[attr-defined]
            # A participant-index row has RowKey = encode_id(recordingId); a recording whose id
            # is literally "recording" would put one under this filter.
            items.extend(
                views.summary(e)
                for e in entities
                if not e.get(schema.PARTICIPANT_ID) and state in (None, views.effective_state(e))
            )
            if position is None or len(items) >= limit:
                break
        return RecordingPage(items[:limit], position or None)

    def _read(self, recording_id: str) -> dict[str, Any] | None:
        version = self._cache.version(recording_id)
        with _unavailable_on_error():
            try:
                entity = self._table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY)
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
        entity = {**schema.recording_keys(recording_id), **update}
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


def _parse_iso(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
