"""The one clock and time format of the registry, the API's answers and the download links.

Times are compared as text in the registry (the state history is sorted by ``at``), so every
writer must format them the same way; they live here rather than in one flow so the API, the
registry and the link signers share them without importing each other.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: A date-time with a zone, as ACS writes them (up to 7 fractional digits, ``Z`` or an offset).
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: sortable as text, unambiguous as a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime | None:
    """An ISO 8601 date-time with a zone (``2026-01-01T10:00:00.1234567Z``), else None.

    Stricter than ``datetime.fromisoformat``, which also takes dates alone, week dates and a
    space for ``T``: only the form ACS and this app write passes. Digits past microseconds are
    dropped.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    fraction = match.group(1) or ""
    trimmed = text.replace(fraction, fraction[:7], 1) if fraction else text
    try:
        return datetime.fromisoformat(trimmed.replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13
        return None
