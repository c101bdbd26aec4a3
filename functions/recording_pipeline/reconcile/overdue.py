"""Recordings stopped long ago with no archive: ``overdue``, then ``lost``, said loudly.

Reads the ``pending-archive`` index (``registry.pending``) up to ``now - overdue_after``, oldest
stop first, and looks at the recording each row names:

- archived, erased, or lost on evidence (``archive_writes.is_settled``): nothing to watch any
  more; the row is deleted;
- a copy under way (``archiving``), or its event put back by this very run (a dead letter or a
  replay): never declared lost here, whatever its age; the archiver owns it;
- stopped before ``now - lost_after`` and still not archived: ACS's retention window has
  certainly passed, so it is marked ``lost`` (``RECORDING_LOST`` at ERROR, as the archiver logs
  it when ACS answers 404) and the row is deleted;
- ``failed``: the poison replay owns it until then;
- no event seen: marked ``overdue`` with the time (``RECORDING_OVERDUE recording <id>`` at
  ERROR, once, when it becomes overdue; the log alert matches it), and kept in the index so it
  becomes ``lost`` if nothing arrives. A late event still archives it (``overdue`` is not final).

``max_items_per_step`` counts the rows acted on (deleted, marked overdue or lost), not the rows
only looked at (still overdue, in progress, recovering), so a backlog of those cannot starve newer
stops; the rows looked at are capped too (:data:`SCAN_FACTOR` times the limit), so a run stays
short.

Both marks are announced to other services (``RecordingOverdue``, ``RecordingLost``) through
``events_out``; a publish that fails is retried by the reconciler's pending-events step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from recording_pipeline.registry.archive_writes import ArchiveRegistry, is_settled
from recording_pipeline.registry.pending import IndexRow, PendingIndex

LOGGER = logging.getLogger(__name__)

#: Logged at ERROR level when a stopped recording's archive event is overdue; alerts match it.
RECORDING_OVERDUE_MARKER = "RECORDING_OVERDUE"
#: Rows looked at per run, as a multiple of ``max_items_per_step`` (rows acted on).
SCAN_FACTOR = 20


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
    """Look at the indexed recordings stopped before ``now - overdue_after``, oldest first, until
    ``max_items_per_step`` of them were acted on (see the module docstring)."""
    step = _OverdueStep(
        table, events, PendingIndex(table), report, policy, now, recovering, dry_run
    )
    acted = 0
    for scanned, row in enumerate(step.index.stopped_before(now - policy.overdue_after)):
        if acted >= policy.max_items_per_step:
            return
        if scanned >= policy.max_items_per_step * SCAN_FACTOR:
            LOGGER.warning("overdue step stopped after %d index rows; the rest next run", scanned)
            return
        acted += step.look_at(row)


@dataclass(frozen=True)
class _OverdueStep:
    """What one run of the step decides with: the same for every index row it looks at."""

    table: TableClient
    events: RecordingEvents
    index: PendingIndex
    report: OverdueReport
    policy: ReconcilePolicy
    now: datetime
    recovering: set[str]
    dry_run: bool

    def look_at(self, row: IndexRow) -> int:
        """Decide about one index row; 1 if it was acted on, else 0."""
        report = self.report
        entity = _entity(self.table, row.recording_id)
        status = "" if entity is None else str(entity.get(schema.ARCHIVE_STATUS) or "")
        if entity is None or is_settled(entity):
            report.resolved += 1
            if not self.dry_run:
                self.index.remove_stopped(row)
            return 1
        if status == schema.STATUS_ARCHIVING:
            report.in_progress += 1
            return 0
        if row.recording_id in self.recovering:
            report.recovering.append({"recordingId": row.recording_id, "stoppedAt": row.at})
            return 0
        if _stop_time(row) <= self.now - self.policy.lost_after:
            self.mark_lost(row)
            return 1
        if status == schema.STATUS_FAILED:
            report.in_progress += 1
            return 0
        if status == schema.STATUS_OVERDUE:
            report.still.append({"recordingId": row.recording_id, "stoppedAt": row.at})
            return 0
        self.mark_overdue(row)
        return 1

    def mark_overdue(self, row: IndexRow) -> None:
        if self.dry_run:
            self.report.marked.append({"recordingId": row.recording_id, "stoppedAt": row.at})
            return
        minutes = self.policy.overdue_after.total_seconds() / 60
        announced = self.events.intend(
            EventName.OVERDUE,
            row.recording_id,
            at=iso(self.now),
            reason=f"no archive event within {minutes:g} minutes of the stop",
            stopped_at=row.at,
        )
        if not ArchiveRegistry(self.table).mark_overdue(row.recording_id, iso(self.now)):
            self.events.cancel(announced)
            return  # an event arrived meanwhile
        self.report.marked.append({"recordingId": row.recording_id, "stoppedAt": row.at})
        LOGGER.error(
            "%s recording %s: stopped at %s, no archive event since",
            RECORDING_OVERDUE_MARKER,
            row.recording_id,
            row.at,
        )
        self.events.announce(announced)

    def mark_lost(self, row: IndexRow) -> None:
        hours = self.policy.lost_after.total_seconds() / 3600
        error = (
            f"not archived within ACS's retention window: stopped at {row.at}, no archive by "
            f"{hours:g} h later"
        )
        if self.dry_run:
            self.report.lost.append({"recordingId": row.recording_id, "stoppedAt": row.at})
            return
        announced = self.events.intend(
            EventName.LOST, row.recording_id, at=iso(self.now), reason=error
        )
        if ArchiveRegistry(self.table).mark_lost(
            row.recording_id, {}, error, evidence=schema.LOST_BY_RETENTION
        ):
            self.report.lost.append({"recordingId": row.recording_id, "stoppedAt": row.at})
            LOGGER.error("%s recording %s: %s", RECORDING_LOST_MARKER, row.recording_id, error)
            self.events.announce(announced)
        else:
            self.events.cancel(announced)
            self.report.resolved += 1  # archived at the last moment
        self.index.remove_stopped(row)


def _entity(table: TableClient, recording_id: str) -> dict[str, Any] | None:
    """The recording's entity; None when it is gone."""
    try:
        return dict(table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY))
    except ResourceNotFoundError:
        return None


def _stop_time(row: IndexRow) -> datetime:
    return datetime.fromisoformat(row.at)
