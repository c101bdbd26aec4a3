"""The one clock and time format of the registry, the API's answers and the download links.

Times are compared as text in the registry (the state history is sorted by ``at``), so every
writer must format them the same way; they live here rather than in one flow so the API, the
registry and the link signers share them without importing each other.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: sortable as text, unambiguous as a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
