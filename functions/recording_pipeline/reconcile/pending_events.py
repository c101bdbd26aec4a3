"""Publish the events of state changes that were made but not announced.

Each announced change leaves a pending-event row until Event Grid accepted its event
(``events_out.announce``). A row older than ``event_publish_grace`` outlived the flow that
wrote it: its publish failed (the topic unreachable, refusing, a role missing) or the flow
stopped before it. Such rows are published here, oldest first, from what the registry and the
manifest hold now; a row whose recording has moved on since is dropped (the later state's own
event is the one that counts). A row that fails again stays for the next run; a refusal (401,
403, 400) is for a person, an outage resolves itself. After an outage (here or in an earlier
step's announce) the step stops: the run's announcer (``RecordingEvents.for_one_run``) tries
nothing more, so a hung topic costs one timeout and does not hold up the steps after this one;
the report says so once (``pausedBy``).
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice

from recording_pipeline.events_out.announce import RecordingEvents
from recording_pipeline.failures import classify
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import EventsReport


def publish_pending_events(
    events: RecordingEvents,
    report: EventsReport,
    *,
    policy: ReconcilePolicy,
    now: datetime,
    dry_run: bool,
) -> None:
    if not events.enabled:
        return
    report.ran = True
    rows = events.pending_before(now - policy.event_publish_grace)
    for row in islice(rows, policy.max_items_per_step):
        if events.paused_by is not None:
            break
        item = {"recordingId": row.recording_id, "event": row.event_name, "at": row.occurred_at}
        if dry_run:
            report.published.append(item)
            continue
        outcome = events.republish(row)
        if outcome.published:
            report.published.append(item)
        elif outcome.superseded:
            report.superseded.append(item)
        else:
            error = outcome.error or ""
            report.failing.append({**item, "error": error, "retry": classify(error)})
    report.paused_by = events.paused_by
