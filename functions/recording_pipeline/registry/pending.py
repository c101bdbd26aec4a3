"""Index rows that let the reconciler find what it must look at without scanning the table.

Table Storage indexes only PartitionKey and RowKey, and a recording's entity is keyed by its id,
so "every recording stopped and not archived, oldest first" would otherwise be a scan of every
recording ever made. Instead a small partition holds one row per such recording, keyed so that
the partition reads in time order (``schema.time_ordered_row_key``):

- ``pending-archive``: written (upsert, idempotent) just after the API records a stop; the
  reconciler reads the rows older than its overdue cutoff, oldest first, looks at the recording
  each names and deletes the row once the recording is archived, lost or erased. A row is a
  candidate, never a verdict: the recording entity decides.
- ``pending-acs-delete``: written by the archiver before it deletes an archived recording's
  chunks from ACS and deleted once every chunk is gone; what is left is retried by the
  reconciler.
- ``poison-replay``: how often the reconciler has put one poisoned event back, by the SHA-256
  of its body (the host gives a message a new id each time it moves it), so a message that keeps
  failing stops cycling.
- ``dead-letter-mark``: a dead-letter blob whose events were re-enqueued but whose index tag
  could not be written (10 tags already, a role missing), by the SHA-256 of its name, so its
  events are not sent again every run; removed once the blob is gone.
- ``reconciler``/``sweep``: when the last full sweep ran (the sweep repairs a lost index write).
- ``pending-event``: an outbox. Whoever makes a state change that is announced to other services
  (``events_out``) writes the row *before* the change, publishes the CloudEvent after it and
  deletes the row once Event Grid accepted it; what is left (a publish that failed, a crash)
  is published by the reconciler. A row is an intention, never a verdict: the recording entity
  says whether the change happened.

A stop and its index row are two writes in two partitions (Table transactions cannot span
partitions), so a crash between them can lose the row; the reconciler's periodic sweep finds
such recordings from the recording entities themselves (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from recording_pipeline.clock import iso
from recording_pipeline.registry import schema
from recording_pipeline.registry.conditional import merge_if_unchanged


@dataclass(frozen=True)
class IndexRow:
    """One index row: the recording it names, its time (stop or archive) and its key."""

    recording_id: str
    at: str
    row_key: str
    manifest_blob: str | None = None


@dataclass(frozen=True)
class PendingEvent:
    """One state change to announce: which recording, which event, when and why."""

    recording_id: str
    event_name: str
    occurred_at: str
    row_key: str
    reason: str | None = None
    stopped_at: str | None = None


@dataclass(frozen=True)
class ReplayCount:
    count: int
    last_replayed_at: str | None


class PendingIndex:
    """The reconciler's index partitions of the registry table.

    :param table: the registry table.
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    # --- stopped, not yet archived ----------------------------------------------------------------

    def add_stopped(self, recording_id: str, stopped_at: str) -> None:
        """Index a stopped recording (idempotent: the same stop gives the same row)."""
        self._upsert(
            schema.PENDING_ARCHIVE_PARTITION,
            schema.time_ordered_row_key(stopped_at, recording_id),
            {schema.RECORDING_ID: recording_id, schema.STOPPED_AT: stopped_at},
        )

    def stopped_before(self, cutoff: datetime) -> Iterator[IndexRow]:
        """Rows of recordings stopped before ``cutoff``, oldest first (one partition, paged)."""
        return self._older_than(schema.PENDING_ARCHIVE_PARTITION, cutoff, schema.STOPPED_AT)

    def remove_stopped(self, row: IndexRow) -> None:
        self._table.delete_entity(schema.PENDING_ARCHIVE_PARTITION, row.row_key)

    # --- archived, not yet deleted from ACS -------------------------------------------------------

    def add_acs_delete(self, recording_id: str, archived_at: str, manifest_blob: str) -> None:
        self._upsert(
            schema.PENDING_ACS_DELETE_PARTITION,
            schema.time_ordered_row_key(archived_at, recording_id),
            {
                schema.RECORDING_ID: recording_id,
                schema.ARCHIVED_AT: archived_at,
                schema.MANIFEST_BLOB: manifest_blob,
            },
        )

    def acs_deletes_before(self, cutoff: datetime) -> Iterator[IndexRow]:
        return self._older_than(schema.PENDING_ACS_DELETE_PARTITION, cutoff, schema.ARCHIVED_AT)

    def remove_acs_delete(self, recording_id: str, archived_at: str) -> None:
        """Deleting a row that is not there succeeds (the SDK treats the 404 as done)."""
        self._table.delete_entity(
            schema.PENDING_ACS_DELETE_PARTITION,
            schema.time_ordered_row_key(archived_at, recording_id),
        )

    # --- state changes whose event is not published yet ----------------------------------------

    def add_event(
        self,
        event_name: str,
        recording_id: str,
        occurred_at: str,
        *,
        reason: str | None = None,
        stopped_at: str | None = None,
    ) -> PendingEvent:
        """Note a state change to announce (idempotent for the same change and time)."""
        row = PendingEvent(
            recording_id=recording_id,
            event_name=event_name,
            occurred_at=occurred_at,
            row_key=schema.pending_event_row_key(occurred_at, event_name, recording_id),
            reason=reason,
            stopped_at=stopped_at,
        )
        properties: dict[str, Any] = {
            schema.RECORDING_ID: recording_id,
            schema.EVENT_NAME: event_name,
            schema.OCCURRED_AT: occurred_at,
        }
        if reason is not None:
            properties[schema.EVENT_REASON] = reason
        if stopped_at is not None:
            properties[schema.STOPPED_AT] = stopped_at
        self._upsert(schema.PENDING_EVENT_PARTITION, row.row_key, properties)
        return row

    def events_before(self, cutoff: datetime) -> Iterator[PendingEvent]:
        """Pending events of changes older than ``cutoff``, oldest first (one partition)."""
        for entity in self._entities_older_than(schema.PENDING_EVENT_PARTITION, cutoff):
            yield PendingEvent(
                recording_id=str(entity.get(schema.RECORDING_ID) or ""),
                event_name=str(entity.get(schema.EVENT_NAME) or ""),
                occurred_at=str(entity.get(schema.OCCURRED_AT) or ""),
                row_key=str(entity[schema.ROW_KEY]),
                reason=entity.get(schema.EVENT_REASON) or None,
                stopped_at=entity.get(schema.STOPPED_AT) or None,
            )

    def remove_event(self, row: PendingEvent) -> None:
        """Deleting a row that is not there succeeds (the SDK treats the 404 as done)."""
        self._table.delete_entity(schema.PENDING_EVENT_PARTITION, row.row_key)

    # --- replays of poisoned events ---------------------------------------------------------------

    def replays(self, body_hash: str) -> ReplayCount:
        try:
            entity = self._table.get_entity(schema.POISON_REPLAY_PARTITION, body_hash)
        except ResourceNotFoundError:
            return ReplayCount(0, None)
        return ReplayCount(
            int(entity.get(schema.REPLAY_COUNT) or 0), entity.get(schema.LAST_REPLAYED_AT) or None
        )

    def count_replay(self, body_hash: str, recording_id: str, at: datetime) -> int:
        """Add one replay (ETag-checked, so two runs cannot both take the last one); the count."""

        def decide(current: dict[str, Any] | None) -> dict[str, Any]:
            count = int((current or {}).get(schema.REPLAY_COUNT) or 0) + 1
            return {
                schema.RECORDING_ID: recording_id,
                schema.REPLAY_COUNT: count,
                schema.LAST_REPLAYED_AT: iso(at),
            }

        keys = {schema.PARTITION_KEY: schema.POISON_REPLAY_PARTITION, schema.ROW_KEY: body_hash}
        written = merge_if_unchanged(self._table, keys, decide, what=f"replay count {body_hash}")
        assert written is not None  # decide always writes
        return int(written[schema.REPLAY_COUNT])

    # --- dead letters whose tag could not be written ---------------------------------------------

    def dead_letter_marks(self) -> dict[str, int]:
        """Bytes read by blob name, for every dead-letter blob marked here instead of by a tag."""
        entities = self._table.query_entities(
            f"{schema.PARTITION_KEY} eq @partition",
            parameters={"partition": schema.DEAD_LETTER_MARK_PARTITION},
        )
        return {
            str(entity.get(schema.BLOB_NAME)): int(entity.get(schema.RECONCILED_BYTES) or -1)
            for entity in entities
        }

    def mark_dead_letter(self, blob_name: str, size: int, at: datetime) -> None:
        self._upsert(
            schema.DEAD_LETTER_MARK_PARTITION,
            _name_key(blob_name),
            {
                schema.BLOB_NAME: blob_name,
                schema.RECONCILED_BYTES: size,
                schema.RECONCILED_AT: iso(at),
            },
        )

    def remove_dead_letter_mark(self, blob_name: str) -> None:
        self._table.delete_entity(schema.DEAD_LETTER_MARK_PARTITION, _name_key(blob_name))

    # --- the sweep --------------------------------------------------------------------------------

    def last_sweep(self) -> str | None:
        try:
            entity = self._table.get_entity(schema.RECONCILER_PARTITION, schema.SWEEP_ROW_KEY)
        except ResourceNotFoundError:
            return None
        return entity.get(schema.LAST_SWEEP_AT) or None

    def mark_swept(self, at: datetime) -> None:
        self._upsert(
            schema.RECONCILER_PARTITION, schema.SWEEP_ROW_KEY, {schema.LAST_SWEEP_AT: iso(at)}
        )

    # --- helpers ----------------------------------------------------------------------------------

    def _upsert(self, partition: str, row: str, properties: dict[str, Any]) -> None:
        self._table.upsert_entity(
            {schema.PARTITION_KEY: partition, schema.ROW_KEY: row, **properties},
            mode=UpdateMode.MERGE,
        )

    def _entities_older_than(self, partition: str, cutoff: datetime) -> Iterator[Any]:
        return iter(
            self._table.query_entities(
                f"{schema.PARTITION_KEY} eq @partition and {schema.ROW_KEY} lt @cutoff",
                parameters={"partition": partition, "cutoff": iso(cutoff)},
            )
        )

    def _older_than(
        self, partition: str, cutoff: datetime, time_property: str
    ) -> Iterator[IndexRow]:
        for entity in self._entities_older_than(partition, cutoff):
            yield IndexRow(
                recording_id=str(entity.get(schema.RECORDING_ID) or ""),
                at=str(entity.get(time_property) or ""),
                row_key=str(entity[schema.ROW_KEY]),
                manifest_blob=entity.get(schema.MANIFEST_BLOB) or None,
            )


def _name_key(name: str) -> str:
    """A RowKey for any blob name (names hold characters keys forbid, and up to 1,024 of them)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()
