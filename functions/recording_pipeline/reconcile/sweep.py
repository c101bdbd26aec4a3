"""The sweep: repair the stopped-recordings index from the recording entities, now and then.

The index row of a stop is written just after the stop itself, in another partition (a Table
transaction cannot span partitions), so a crash between the two loses the row; and a call that
hangs up ends its recording without the API ever seeing a stop. Neither may make a recording
whose event never comes invisible to the reconciler, so at most every ``sweep_every`` (its time
kept in the registry) the sweep reads the recording entities created since the previous sweep
minus ``sweep_lookback``. The filter is on ``CreatedAt``, which Table Storage does not index: the
service still reads every entity, which is why this runs hours apart and the index does the
work in between. For each recording not archived, erased or lost:

- stopped in the registry: indexed at the stop time its history records, unless that row (the
  one the API writes) is there;
- still ``active`` or ``inactive`` in the registry, no event seen, started more than
  ``overdue_after`` ago: ACS is asked; when it no longer knows the recording (404: the call ended
  or the stop was lost), the stop is recorded in the registry (source ``acs``, at the time of
  the sweep, the latest it can have happened, so ``lost`` is never declared early) and indexed;
- ``failed`` in the registry, no archive, started more than ``overdue_after`` ago: a failure is
  final, so nothing else would ever look at it again. ACS is asked: when it still has the
  recording live, the failure was wrong (a replayed callback, say): the live state is restored
  (source ``acs``) and the run reports it (``failureContradicted``, a person is needed). When ACS
  no longer has it but the history shows it was recording (a ``RecordingStateChanged`` callback,
  or a pause, resume or stop ACS accepted), it may have documents whose event has not come: it
  is indexed like a stop at the time of the sweep, so ``overdue`` and ``lost`` say so loudly. A
  failure with no sign of recording (a start that failed) is left alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.communication.callautomation import CallAutomationClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient

from recording_pipeline.clock import iso
from recording_pipeline.failures import describe
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import SweepReport
from recording_pipeline.registry import schema
from recording_pipeline.registry.pending import PendingIndex
from recording_pipeline.registry.states import StateChange, history, state_change
from recording_pipeline.registry.table import Registry

LOGGER = logging.getLogger(__name__)

_DONE = frozenset({schema.STATUS_ARCHIVED, schema.STATUS_ERASED, schema.STATUS_LOST})
_LIVE_STATES = frozenset({"active", "inactive"})
#: States the sweep asks ACS about: live ones (a hang-up the API never saw) and ``failed`` (final,
#: so nothing else would look again; see the module docstring).
_WATCHED_STATES = _LIVE_STATES | {"failed"}
_SELECT = [
    schema.PARTITION_KEY,
    schema.RECORDING_ID,
    schema.STATE,
    schema.STATE_HISTORY_JSON,
    schema.ARCHIVE_STATUS,
    schema.CREATED_AT,
    schema.UPDATED_AT,
    schema.PARTICIPANT_ID,
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Past any stop time: the whole stop index (one small partition) in one query.
_ALL_OF_IT = timedelta(days=3650)


def sweep_due(table: TableClient, policy: ReconcilePolicy, now: datetime) -> bool:
    last = PendingIndex(table).last_sweep()
    return last is None or now - datetime.fromisoformat(last) >= policy.sweep_every


def sweep(
    table: TableClient,
    acs: CallAutomationClient,
    report: SweepReport,
    errors: list[str],
    *,
    policy: ReconcilePolicy,
    now: datetime,
    dry_run: bool,
) -> None:
    """Index every recent recording that is stopped (or ended at ACS) and not yet archived."""
    pending = PendingIndex(table)
    last = pending.last_sweep()
    since = (datetime.fromisoformat(last) if last else _EPOCH) - policy.sweep_lookback
    report.ran = True
    rows = list(pending.stopped_before(now + _ALL_OF_IT))
    indexed = {row.row_key for row in rows}
    indexed_ids = {row.recording_id for row in rows}
    entities = table.query_entities(
        f"{schema.ROW_KEY} eq @row and {schema.CREATED_AT} ge @since",
        parameters={"row": schema.RECORDING_ROW_KEY, "since": iso(max(since, _EPOCH))},
        select=_SELECT,
    )
    asked = 0
    for entity in entities:
        status = str(entity.get(schema.ARCHIVE_STATUS) or "")
        recording_id = str(entity.get(schema.RECORDING_ID) or "")
        if entity.get(schema.PARTICIPANT_ID) or not recording_id or status in _DONE:
            continue
        report.examined += 1
        state = str(entity.get(schema.STATE) or "")
        if state == "stopped":
            stopped_at = _stop_time(entity, now)
            if schema.time_ordered_row_key(stopped_at, recording_id) in indexed:
                continue
            report.indexed.append({"recordingId": recording_id, "stoppedAt": stopped_at})
            if not dry_run:
                pending.add_stopped(recording_id, stopped_at)
        elif state in _WATCHED_STATES and not status and _started_before(entity, now, policy):
            if asked >= policy.max_items_per_step:
                continue
            asked += 1
            if state == "failed":
                index = recording_id not in indexed_ids and _was_recording(entity)
                _check_failure_with_acs(
                    table, acs, recording_id, report, errors, index=index, now=now, dry_run=dry_run
                )
            else:
                _check_with_acs(table, acs, recording_id, report, errors, now=now, dry_run=dry_run)
    if not dry_run:
        pending.mark_swept(now)


def _check_with_acs(
    table: TableClient,
    acs: CallAutomationClient,
    recording_id: str,
    report: SweepReport,
    errors: list[str],
    *,
    now: datetime,
    dry_run: bool,
) -> None:
    try:
        if _live_state(acs, recording_id) is not None:
            return  # still recording
    except HttpResponseError as error:
        errors.append(f"sweep: ACS state of recording {recording_id}: {describe(error)}")
        return
    stopped_at = iso(now)
    report.ended_at_acs.append({"recordingId": recording_id, "stoppedAt": stopped_at})
    if dry_run:
        return
    stop = StateChange("stopped", stopped_at, "acs")
    Registry(table).apply_changes(recording_id, [state_change(recording_id, stop)])
    PendingIndex(table).add_stopped(recording_id, stopped_at)
    LOGGER.warning("recording %s ended at ACS without a stop in the registry", recording_id)


def _check_failure_with_acs(
    table: TableClient,
    acs: CallAutomationClient,
    recording_id: str,
    report: SweepReport,
    errors: list[str],
    *,
    index: bool,
    now: datetime,
    dry_run: bool,
) -> None:
    """Restore a ``failed`` recording ACS still has live; index one that was recording (see the
    module docstring); ``index`` is False when it is indexed already or never recorded."""
    try:
        live = _live_state(acs, recording_id)
    except HttpResponseError as error:
        errors.append(f"sweep: ACS state of recording {recording_id}: {describe(error)}")
        return
    if live is not None:
        report.failure_contradicted.append({"recordingId": recording_id, "liveState": live})
        LOGGER.error(
            "recording %s is %s at ACS although the registry has it failed: state restored",
            recording_id,
            live,
        )
        if not dry_run:
            restore = StateChange(live, iso(now), "acs")
            Registry(table).apply_changes(recording_id, [state_change(recording_id, restore)])
        return
    if not index:
        return
    stopped_at = iso(now)
    report.indexed.append({"recordingId": recording_id, "stoppedAt": stopped_at, "after": "failed"})
    if not dry_run:
        PendingIndex(table).add_stopped(recording_id, stopped_at)
    LOGGER.warning("failed recording %s had been recording: watched for its archive", recording_id)


def _live_state(acs: CallAutomationClient, recording_id: str) -> str | None:
    """ACS's state of the recording now; None when ACS does not have it (404).

    :raises HttpResponseError: when ACS cannot answer.
    """
    try:
        properties = acs.get_recording_properties(recording_id)
    except ResourceNotFoundError:
        return None
    return str(properties.recording_state or "active")


def _was_recording(entity: dict[str, Any]) -> bool:
    """Whether the history shows ACS recorded: a state callback (RecordingStateChanged), or an
    operation after the start that ACS accepted (pause, resume, stop)."""
    entries = history(entity)
    reported = any(
        e.get("source") == "callback" and e.get("state") in _LIVE_STATES for e in entries
    )
    operated = sum(1 for e in entries if e.get("source") == "api") > 1
    return reported or operated


def _stop_time(entity: dict[str, Any], now: datetime) -> str:
    """When the history says the recording stopped (the API's own time for it)."""
    stops = [e.get("at") for e in history(entity) if e.get("state") == "stopped" and e.get("at")]
    if stops:
        return str(stops[-1])
    return str(entity.get(schema.UPDATED_AT) or iso(now))


def _started_before(entity: dict[str, Any], now: datetime, policy: ReconcilePolicy) -> bool:
    created = str(entity.get(schema.CREATED_AT) or "")
    return bool(created) and created <= iso(now - policy.overdue_after)
