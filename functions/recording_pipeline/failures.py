"""How an archive failure is written down, and whether retrying it later can help.

The archiver's last attempt records why it failed in the registry (``ArchiveError``) as
``"{ExceptionType}: message"``, with ``" (HTTP {status})"`` after the type when the error carried
an HTTP status. The reconciler reads it back to decide whether a message the host moved to the
poison queue is worth putting back: an outage (a 5xx, a throttle, a timeout, a dropped
connection) passes, a refusal (bad credentials, a missing container, a conflict) does not,
because the same message would fail the same way. What cannot be read is treated as a refusal:
a person looks at it rather than a loop retrying it.
"""

from __future__ import annotations

import re
from typing import Literal

Retry = Literal["transient", "permanent"]

#: Statuses an outage or a throttle answers with (Storage and ACS alike).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Exception types that mean "could not reach or finish talking to the service".
TRANSIENT_TYPES = frozenset(
    {
        "SourceUnavailableError",  # the media source's own retries ran out (5xx, 429, drops)
        "CallIdPendingError",  # the callback that names the call has not arrived yet
        "ServiceRequestError",
        "ServiceRequestTimeoutError",
        "ServiceResponseError",
        "ServiceResponseTimeoutError",
        "IncompleteReadError",
        "RegistryUnavailableError",
        "TimeoutError",
        "ConnectionError",
        "ConnectionResetError",
        "ConnectionRefusedError",
        "ConnectionAbortedError",
        "BrokenPipeError",
    }
)
_DESCRIPTION = re.compile(r"^(?P<type>[A-Za-z_]\w*)(?: \(HTTP (?P<status>\d{3})\))?: ")


def describe(error: BaseException) -> str:
    """``"{ExceptionType}: message"``, or ``"{ExceptionType} (HTTP {status}): message"``."""
    status = getattr(error, "status_code", None)
    kind = type(error).__name__
    head = f"{kind} (HTTP {status})" if isinstance(status, int) else kind
    return f"{head}: {error}"


def classify(description: str) -> Retry:
    """Whether the failure :func:`describe` wrote down may go away by itself."""
    match = _DESCRIPTION.match(description)
    if match is None:
        return "permanent"
    if match.group("status") is not None:
        return "transient" if int(match.group("status")) in TRANSIENT_STATUSES else "permanent"
    return "transient" if match.group("type") in TRANSIENT_TYPES else "permanent"
