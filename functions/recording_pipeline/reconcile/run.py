"""One reconciler run: every step in order, each isolated, one report.

The timer function (``function_app.py``) calls :func:`run_scheduled`; a person runs the same
:func:`run` through ``scripts/reconcile.py`` (``--dry-run`` changes nothing). The clients and the
clock are passed in, so tests drive a run against Azurite and the emulator at any moment of a
recording's life without waiting.

Order: dead letters and poison first (what they put back is "recovering", not overdue), then
the sweep (it repairs the index the overdue step reads), then the overdue step, then the events
that were not published, then the ACS deletions. A step that fails is reported (``errors``) and
the next one still runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from azure.communication.callautomation import CallAutomationClient
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from recording_pipeline.clients import (
    call_automation_client,
    dead_letter_container_client,
    queue_client,
    recordings_container_client,
    registry_table_client,
)
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.events_out.announce import RecordingEvents, recording_events
from recording_pipeline.failures import describe
from recording_pipeline.reconcile.acs_deletes import retry_acs_deletes
from recording_pipeline.reconcile.dead_letters import recover_dead_letters
from recording_pipeline.reconcile.overdue import find_overdue
from recording_pipeline.reconcile.pending_events import publish_pending_events
from recording_pipeline.reconcile.poison_replay import replay_poison
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import RECONCILE_ATTENTION_MARKER, ReconcileReport
from recording_pipeline.reconcile.sweep import sweep, sweep_due
from recording_pipeline.settings import Settings

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileClients:
    """What a run reads and writes: all in the archive account, plus ACS for deletes and the
    sweep's questions."""

    table: TableClient
    dead_letters: ContainerClient
    recordings: ContainerClient
    events: QueueClient
    poison: QueueClient
    acs: CallAutomationClient
    #: The only accepted event ``topic`` (``ACS_RESOURCE_ID``), to read recording ids.
    resource_id: str
    #: Announces overdue and lost recordings, and publishes what other flows left pending.
    announcer: RecordingEvents

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcileClients:
        table = registry_table_client(settings)
        recordings = recordings_container_client(settings)
        return cls(
            table=table,
            dead_letters=dead_letter_container_client(settings),
            recordings=recordings,
            events=queue_client(settings, settings.events_queue),
            poison=queue_client(settings, settings.poison_queue),
            acs=call_automation_client(settings),
            resource_id=settings.acs_resource_id,
            announcer=recording_events(settings, table, recordings),
        )


def run(
    clients: ReconcileClients,
    policy: ReconcilePolicy,
    *,
    now: datetime,
    dry_run: bool = False,
    force_sweep: bool = False,
) -> ReconcileReport:
    """Run every step once at ``now``; see the module docstring for the order."""
    report = ReconcileReport(started_at=iso(now), dry_run=dry_run)
    announcer = clients.announcer.for_one_run()  # stops publishing after an outage
    _step(
        report,
        "dead letters",
        lambda: recover_dead_letters(
            clients.dead_letters,
            clients.events,
            clients.table,
            report.dead_letters,
            resource_id=clients.resource_id,
            now=now,
            dry_run=dry_run,
            limit=policy.max_items_per_step,
        ),
    )
    _step(
        report,
        "poison",
        lambda: replay_poison(
            clients.poison,
            clients.events,
            clients.table,
            report.poison,
            policy=policy,
            resource_id=clients.resource_id,
            now=now,
            dry_run=dry_run,
        ),
    )
    if force_sweep or sweep_due(clients.table, policy, now):
        _step(
            report,
            "sweep",
            lambda: sweep(
                clients.table,
                clients.acs,
                report.sweep,
                report.errors,
                policy=policy,
                now=now,
                dry_run=dry_run,
            ),
        )
    recovering = {
        str(item["recordingId"])
        for item in (*report.dead_letters.requeued, *report.poison.replayed)
        if item.get("recordingId")
    }
    _step(
        report,
        "overdue",
        lambda: find_overdue(
            clients.table,
            announcer,
            report.overdue,
            policy=policy,
            now=now,
            recovering=recovering,
            dry_run=dry_run,
        ),
    )
    _step(
        report,
        "events",
        lambda: publish_pending_events(
            announcer, report.events, policy=policy, now=now, dry_run=dry_run
        ),
    )
    _step(
        report,
        "ACS deletes",
        lambda: retry_acs_deletes(
            clients.table,
            clients.recordings,
            clients.acs,
            report.acs_deletes,
            policy=policy,
            now=now,
            dry_run=dry_run,
        ),
    )
    return report


def run_scheduled(settings: Settings | None = None) -> ReconcileReport:
    """The timer's run: settings from the environment, the wall clock, the summary logged."""
    settings = settings or Settings.from_env()
    report = run(
        ReconcileClients.from_settings(settings),
        ReconcilePolicy.from_settings(settings),
        now=utc_now(),
    )
    log_summary(report)
    return report


def log_summary(report: ReconcileReport) -> None:
    """The run's summary line, at ERROR with :data:`RECONCILE_ATTENTION_MARKER` when a person is
    needed (the log alert matches it), else at INFO."""
    if report.needs_person:
        LOGGER.error("%s %s", RECONCILE_ATTENTION_MARKER, report.summary())
    else:
        LOGGER.info("%s", report.summary())


def _step(report: ReconcileReport, name: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as error:  # one failing step must not keep the others from running
        LOGGER.exception("reconcile step %s failed", name)
        report.errors.append(f"{name}: {describe(error)}")
