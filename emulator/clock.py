"""The emulator's notion of "now": the wall clock, or a manual clock tests advance.

A manual clock makes a one-hour recording take milliseconds of test time and makes expiry
deterministic. HMAC freshness (``x-ms-date``) always uses the real clock, because clients sign
with real time.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    @property
    def manual(self) -> bool: ...


class WallClock:
    manual = False

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Starts at the wall time of creation (whole seconds) and moves only when advanced."""

    manual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time() if start is None else start))

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._now += seconds
        return self._now


def make_clock(kind: str) -> WallClock | ManualClock:
    if kind == "wall":
        return WallClock()
    if kind == "manual":
        return ManualClock()
    raise ValueError(f"clock must be 'wall' or 'manual', got {kind!r}")


def iso8601(epoch_seconds: float) -> str:
    """UTC ISO 8601 with milliseconds and a Z suffix, as ACS writes timestamps."""
    moment = dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
