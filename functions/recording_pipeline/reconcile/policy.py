"""How long the reconciler waits before it calls something overdue or lost, and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from recording_pipeline.settings import Settings


@dataclass(frozen=True)
class ReconcilePolicy:
    """The reconciler's thresholds; :meth:`from_settings` reads the Function App's settings."""

    #: A recording stopped this long ago with no archive event is ``overdue``.
    overdue_after: timedelta = timedelta(minutes=30)
    #: ... and ``lost`` this long after its stop: ACS's retention window has certainly passed.
    lost_after: timedelta = timedelta(hours=25)
    #: A poisoned event is put back at most this many times.
    max_poison_replays: int = 5
    #: Before replay k+1, wait ``replay_spacing * 2**(k-1)`` after replay k (an outage that
    #: outlasted one replay is given more time by the next).
    replay_spacing: timedelta = timedelta(minutes=15)
    #: Retry ACS deletions (``DELETE_FROM_ACS_AFTER_ARCHIVE``).
    delete_from_acs: bool = True
    #: A pending deletion younger than this is the archiver's own, still under way.
    acs_delete_grace: timedelta = timedelta(minutes=15)
    #: A pending event younger than this belongs to the flow that wrote it, still publishing it.
    event_publish_grace: timedelta = timedelta(minutes=15)
    #: The full sweep (a scan of recent recording entities) runs at most this often.
    sweep_every: timedelta = timedelta(hours=6)
    #: The sweep reads recordings created since the previous sweep minus this.
    sweep_lookback: timedelta = timedelta(days=3)
    #: Items one step handles per run (the rest waits for the next run), so a run stays short.
    max_items_per_step: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcilePolicy:
        return cls(
            overdue_after=timedelta(minutes=settings.overdue_after_minutes),
            lost_after=timedelta(hours=settings.lost_after_hours),
            max_poison_replays=settings.max_poison_replays,
            delete_from_acs=settings.delete_from_acs_after_archive,
        )

    def replay_due(self, replays: int, since_last: timedelta | None) -> bool:
        """Whether replay ``replays + 1`` may happen ``since_last`` after the previous one."""
        if replays == 0 or since_last is None:
            return True
        return since_last >= self.replay_spacing * 2 ** (replays - 1)
