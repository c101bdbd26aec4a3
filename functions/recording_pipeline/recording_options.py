"""A validated start request: what the API sends to ACS and what the registry stores.

Both the API (which builds it from a request and fingerprints it for Idempotency-Keys) and the
registry (which stores it as ``OptionsJson``) need this type, so it lives in neither of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

#: The start option that sends a recording's callbacks to a URL of the caller's choosing.
CALLBACK_URL_FIELD = "recordingStateCallbackUrl"


def names_own_callback_url(wire: Any) -> bool:
    """Whether stored options (:meth:`RecordingOptions.to_wire`) named their own callback URL:
    ACS then posts the recording's callbacks there, never to this API."""
    return isinstance(wire, dict) and bool(wire.get(CALLBACK_URL_FIELD))


@dataclass(frozen=True)
class RecordingOptions:
    """A validated start request with every default filled in (what the registry stores)."""

    server_call_id: str | None
    call_connection_id: str | None
    content: str
    channel: str
    format: str
    pause_on_start: bool
    participant_ordering: tuple[str, ...]
    channel_affinity: tuple[tuple[str, int], ...]
    callback_url: str | None

    def to_wire(self) -> dict[str, Any]:
        """The options as the API shows them (and as ``OptionsJson`` stores them)."""
        return {
            "content": self.content,
            "channel": self.channel,
            "format": self.format,
            "pauseOnStart": self.pause_on_start,
            "audioChannelParticipantOrdering": list(self.participant_ordering),
            "channelAffinity": [
                {"participant": participant, "channel": channel}
                for participant, channel in self.channel_affinity
            ],
            CALLBACK_URL_FIELD: self.callback_url,
        }

    def fingerprint(self) -> str:
        """A stable hash of the request, so a reused Idempotency-Key with another body is caught."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
