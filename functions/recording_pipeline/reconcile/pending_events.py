"""Publish the events of state changes that were made but not announced.

Each announced change leaves a pending-event row until Event Grid accepted its event
(``events_out.announce``). A row older than ``event_publish_grace`` outlived the flow that
wrote it: its publish failed (the topic unreachable, refusing, a role missing) or the flow
stopped before it. Such rows are published here, oldest first, from what the registry and the
manifest hold now; a row whose recording has moved on since is dropped (the later state's own
event is the one that counts). A row that fails again stays for the next run; a refusal (401,
403, 400) is for a person, an outage resolves itself.
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
