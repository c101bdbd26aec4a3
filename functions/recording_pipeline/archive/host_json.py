"""The queue trigger's delivery settings, read from ``functions/host.json`` in one place.

In Azure the Functions host applies them. The archiver needs ``maxDequeueCount`` to know when an
attempt is the last one (it then records ``failed``), and locally the archive worker plays the
host's part with the same values, so a message is retried, leased and moved to the poison queue
alike in both places.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: The app's host.json (functions/ is the deployed app root).
HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


@dataclass(frozen=True)
class QueueHostOptions:
    """The queue-trigger settings of host.json that shape delivery (the host's defaults)."""

    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 0.0
    batch_size: int = 16
    max_polling_interval_seconds: float = 60.0

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON) -> QueueHostOptions:
        """:raises FileNotFoundError: when ``path`` does not exist."""
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        defaults = cls()
        return cls(
            max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
            visibility_timeout_seconds=_timespan_seconds(
                queues.get("visibilityTimeout", "00:00:00")
            ),
            batch_size=int(queues.get("batchSize", defaults.batch_size)),
            max_polling_interval_seconds=_timespan_seconds(
                queues.get("maxPollingInterval", "00:01:00")
            ),
        )


def max_dequeue_count(path: Path = HOST_JSON) -> int:
    """``extensions.queues.maxDequeueCount`` of host.json; the host's default without the file."""
    try:
        return QueueHostOptions.from_host_json(path).max_dequeue_count
    except FileNotFoundError:
        return QueueHostOptions().max_dequeue_count


def _timespan_seconds(value: str | int) -> float:
    """host.json time spans are ``hh:mm:ss`` (or milliseconds as a number)."""
    if isinstance(value, int | float):
        return value / 1000
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
