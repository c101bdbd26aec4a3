"""Recordings stopped long ago with no archive: ``overdue``, then ``lost``, said loudly.

Reads the ``pending-archive`` index (``registry.pending``) up to ``now - overdue_after``, oldest
stop first, and looks at the recording each row names:

- archived, erased or lost: nothing to watch any more; the row is deleted;
- stopped before ``now - lost_after`` and still not archived: ACS's retention window has
  certainly passed, so it is marked ``lost`` (``RECORDING_LOST`` at ERROR, as the archiver logs
  it when ACS answers 404) and the row is deleted;
- an event was seen (``archiving``, ``failed``): the archiver and the poison replay own it;
- its event was put back by this very run (a dead letter or a replay): recovering;
- no event seen: marked ``overdue`` with the time (``RECORDING_OVERDUE recording <id>`` at
  ERROR, once, when it becomes overdue; the log alert matches it), and kept in the index so it
  becomes ``lost`` if nothing arrives. A late event still archives it (``overdue`` is not final).

Both marks are announced to other services (``RecordingOverdue``, ``RecordingLost``) through
``events_out``; a publish that fails is retried by the reconciler's pending-events step.
"""

from __future__ import annotations

import logging
from datetime import datetime
from itertools import islice

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from recording_pipeline.archive.archiver import RECORDING_LOST_MARKER
from recording_pipeline.clock import iso
from recording_pipeline.events_out.announce import RecordingEvents
from recording_pipeline.events_out.cloud_events import EventName
from recording_pipeline.ids import encode_id
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import OverdueReport
from recording_pipeline.registry import schema
from recording_pipeline.registry.archive_writes import ArchiveRegistry
from recording_pipeline.registry.pending import IndexRow, PendingIndex

LOGGER = logging.getLogger(__name__)

#: Logged at ERROR level when a stopped recording's archive event is overdue; alerts match it.
RECORDING_OVERDUE_MARKER = "RECORDING_OVERDUE"
_DONE = frozenset({schema.STATUS_ARCHIVED, schema.STATUS_ERASED, schema.STATUS_LOST})
_EVENT_SEEN = frozenset({schema.STATUS_ARCHIVING, schema.STATUS_FAILED})


def find_overdue(
    table: TableClient,
    events: RecordingEvents,
    report: OverdueReport,
    *,
    policy: ReconcilePolicy,
    now: datetime,
    recovering: set[str],
    dry_run: bool,
) -> None:
    """Look at every indexed recording stopped before ``now - overdue_after`` (up to the limit)."""
    pending = PendingIndex(table)
    rows = pending.stopped_before(now - policy.overdue_after)
    for row in islice(rows, policy.max_items_per_step):
        status = _status(table, row.recording_id)
        if status is None or status in _DONE:
            report.resolved += 1
            if not dry_run:
                pending.remove_stopped(row)
        elif _stop_time(row) <= now - policy.lost_after:
            _mark_lost(table, events, pending, row, report, policy, now, dry_run)
        elif status in _EVENT_SEEN:
            report.in_progress += 1
        elif row.recording_id in recovering:
            report.recovering.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        elif status == schema.STATUS_OVERDUE:
            report.still.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        else:
            _mark_overdue(table, events, row, report, policy, now, dry_run)


def _status(table: TableClient, recording_id: str) -> str | None:
    """The recording's ``ArchiveStatus`` ("" when none); None when the entity is gone."""
    try:
        entity = table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY)
    except ResourceNotFoundError:
        return None
    return str(entity.get(schema.ARCHIVE_STATUS) or "")


def _stop_time(row: IndexRow) -> datetime:
    return datetime.fromisoformat(row.at)


def _mark_overdue(
    table: TableClient,
    events: RecordingEvents,
    row: IndexRow,
    report: OverdueReport,
    policy: ReconcilePolicy,
    now: datetime,
    dry_run: bool,
) -> None:
    if dry_run:
        report.marked.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        return
    minutes = policy.overdue_after.total_seconds() / 60
    pending = events.intend(
        EventName.OVERDUE,
        row.recording_id,
        at=iso(now),
        reason=f"no archive event within {minutes:g} minutes of the stop",
        stopped_at=row.at,
    )
    if not ArchiveRegistry(table).mark_overdue(row.recording_id, iso(now)):
        events.cancel(pending)
        return  # an event arrived meanwhile
    report.marked.append({"recordingId": row.recording_id, "stoppedAt": row.at})
    LOGGER.error(
        "%s recording %s: stopped at %s, no archive event since",
        RECORDING_OVERDUE_MARKER,
        row.recording_id,
        row.at,
    )
    events.announce(pending)


def _mark_lost(
    table: TableClient,
    events: RecordingEvents,
    pending: PendingIndex,
    row: IndexRow,
    report: OverdueReport,
    policy: ReconcilePolicy,
    now: datetime,
    dry_run: bool,
) -> None:
    hours = policy.lost_after.total_seconds() / 3600
    error = (
        f"not archived within ACS's retention window: stopped at {row.at}, no archive by "
        f"{hours:g} h later"
    )
    if dry_run:
        report.lost.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        return
    announced = events.intend(EventName.LOST, row.recording_id, at=iso(now), reason=error)
    if ArchiveRegistry(table).mark_lost(row.recording_id, {}, error):
        report.lost.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        LOGGER.error("%s recording %s: %s", RECORDING_LOST_MARKER, row.recording_id, error)
        events.announce(announced)
    else:
        events.cancel(announced)
        report.resolved += 1  # archived at the last moment
    pending.remove_stopped(row)
