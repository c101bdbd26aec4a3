"""What one reconciler run did: one line for a log or a terminal, the details as JSON.

Every step fills its own part; :attr:`ReconcileReport.needs_person` says whether anything in it
is beyond what the pipeline repairs by itself (a recording overdue or lost, a poisoned event
that fails for good or kept failing, a dead letter that cannot be read or tagged, a failure
ACS contradicts, an ACS deletion refused, a step that failed). The CLI exits non-zero on it;
the timer logs the line with a marker the alert matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Logged (ERROR) with the summary when a run found something a person must look at.
RECONCILE_ATTENTION_MARKER = "RECONCILE_ATTENTION"

Item = dict[str, Any]


@dataclass
class DeadLetterReport:
    blobs_read: int = 0
    requeued: list[Item] = field(default_factory=list)
    other_events: int = 0
    unreadable: list[Item] = field(default_factory=list)
    #: Re-enqueued, but the tag could not be written: marked in the registry instead.
    untagged: list[Item] = field(default_factory=list)


@dataclass
class PoisonReport:
    replayed: list[Item] = field(default_factory=list)
    resolved: list[Item] = field(default_factory=list)
    rejected: list[Item] = field(default_factory=list)
    waiting: list[Item] = field(default_factory=list)
    permanent: list[Item] = field(default_factory=list)
    exhausted: list[Item] = field(default_factory=list)


@dataclass
class SweepReport:
    ran: bool = False
    examined: int = 0
    indexed: list[Item] = field(default_factory=list)
    ended_at_acs: list[Item] = field(default_factory=list)
    #: ``failed`` in the registry, live at ACS: the failure was wrong (state restored).
    failure_contradicted: list[Item] = field(default_factory=list)


@dataclass
class OverdueReport:
    marked: list[Item] = field(default_factory=list)
    still: list[Item] = field(default_factory=list)
    lost: list[Item] = field(default_factory=list)
    recovering: list[Item] = field(default_factory=list)
    in_progress: int = 0
    resolved: int = 0


@dataclass
class AcsDeleteReport:
    deleted: list[Item] = field(default_factory=list)
    failing: list[Item] = field(default_factory=list)


@dataclass
class EventsReport:
    """The pending-events step: events published late, dropped as superseded, still failing."""

    ran: bool = False
    published: list[Item] = field(default_factory=list)
    superseded: list[Item] = field(default_factory=list)
    failing: list[Item] = field(default_factory=list)
    #: The outage after which this run published nothing more (None: no pause).
    paused_by: str | None = None


@dataclass
class ReconcileReport:
    started_at: str
    dry_run: bool
    dead_letters: DeadLetterReport = field(default_factory=DeadLetterReport)
    poison: PoisonReport = field(default_factory=PoisonReport)
    sweep: SweepReport = field(default_factory=SweepReport)
    overdue: OverdueReport = field(default_factory=OverdueReport)
    acs_deletes: AcsDeleteReport = field(default_factory=AcsDeleteReport)
    events: EventsReport = field(default_factory=EventsReport)
    errors: list[str] = field(default_factory=list)

    @property
    def needs_person(self) -> bool:
        return bool(
            self.errors
            or self.dead_letters.unreadable
            or self.dead_letters.untagged
            or self.sweep.failure_contradicted
            or self.poison.permanent
            or self.poison.exhausted
            or self.overdue.marked
            or self.overdue.still
            or self.overdue.lost
            or any(item["retry"] == "permanent" for item in self.acs_deletes.failing)
            or any(item["retry"] == "permanent" for item in self.events.failing)
        )

    def summary(self) -> str:
        """One line: what was recovered, what is still open, whether a person is needed."""
        verb = "would re-enqueue" if self.dry_run else "re-enqueued"
        dead, poison, overdue = self.dead_letters, self.poison, self.overdue
        parts = [
            f"dead letters: {len(dead.requeued)} {verb}, {len(dead.unreadable)} unreadable",
            f"poison: {len(poison.replayed)} replayed, {len(poison.resolved)} already done, "
            f"{len(poison.waiting)} waiting, {len(poison.permanent) + len(poison.exhausted)} "
            f"for a person, {len(poison.rejected)} rejected (left alone)",
            f"overdue: {len(overdue.marked)} new, {len(overdue.still)} still, "
            f"{len(overdue.recovering)} recovering",
            f"lost: {len(overdue.lost)}",
            f"ACS deletes: {len(self.acs_deletes.deleted)} done, "
            f"{len(self.acs_deletes.failing)} failing",
            "events: "
            + (
                f"{len(self.events.published)} published late, {len(self.events.failing)} failing"
                + (", paused after an outage" if self.events.paused_by else "")
                if self.events.ran
                else "off"
            ),
            "sweep: " + (f"{self.sweep.examined} examined" if self.sweep.ran else "not due"),
            f"errors: {len(self.errors)}",
        ]
        verdict = "NEEDS A PERSON" if self.needs_person else "ok"
        prefix = "reconcile (dry run)" if self.dry_run else "reconcile"
        return f"{prefix} {self.started_at}: " + "; ".join(parts) + f" -> {verdict}"

    def to_json(self) -> dict[str, Any]:
        dead, poison, sweep, overdue = self.dead_letters, self.poison, self.sweep, self.overdue
        return {
            "startedAt": self.started_at,
            "dryRun": self.dry_run,
            "needsPerson": self.needs_person,
            "summary": self.summary(),
            "deadLetters": {
                "blobsRead": dead.blobs_read,
                "requeued": dead.requeued,
                "otherEvents": dead.other_events,
                "unreadable": dead.unreadable,
                "untagged": dead.untagged,
            },
            "poison": {
                "replayed": poison.replayed,
                "resolved": poison.resolved,
                "rejected": poison.rejected,
                "waiting": poison.waiting,
                "permanent": poison.permanent,
                "exhausted": poison.exhausted,
            },
            "sweep": {
                "ran": sweep.ran,
                "examined": sweep.examined,
                "indexed": sweep.indexed,
                "endedAtAcs": sweep.ended_at_acs,
                "failureContradicted": sweep.failure_contradicted,
            },
            "overdue": {
                "marked": overdue.marked,
                "still": overdue.still,
                "lost": overdue.lost,
                "recovering": overdue.recovering,
                "inProgress": overdue.in_progress,
                "resolved": overdue.resolved,
            },
            "acsDeletes": {
                "deleted": self.acs_deletes.deleted,
                "failing": self.acs_deletes.failing,
            },
            "events": {
                "ran": self.events.ran,
                "published": self.events.published,
                "superseded": self.events.superseded,
                "failing": self.events.failing,
                "pausedBy": self.events.paused_by,
            },
            "errors": self.errors,
        }
