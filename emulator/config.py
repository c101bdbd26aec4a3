"""Everything the emulator is configured with, validated once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emulator.constants import (
    ALLOWED_MEDIA_HOST_SUFFIXES,
    DEFAULT_IMMUTABLE_RESOURCE_ID,
    DEFAULT_MAX_CHUNK_SECONDS,
    DEFAULT_REGION_HOST,
    DEFAULT_RESOURCE_ID,
    DEFAULT_RETENTION_SECONDS,
)


class ConfigError(ValueError):
    """A start-up option is invalid; the message names the option and the rule."""


@dataclass
class EmulatorConfig:
    access_key: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    clock: str = "wall"
    max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    event_queue_connection_string: str | None = None
    event_queue_name: str | None = None
    event_queue_encoding: str = "base64"
    event_webhook: str | None = None
    event_delay_seconds: float = 0.0
    #: Container (in the queue's account) that dead-lettered events are written to.
    dead_letter_container: str = "event-deadletter"
    region_host: str = DEFAULT_REGION_HOST
    resource_id: str = DEFAULT_RESOURCE_ID
    immutable_resource_id: str = DEFAULT_IMMUTABLE_RESOURCE_ID
    recording_id_suffix: str = ""
    fault_seed: int = 0
    faults: list[dict] = field(default_factory=list)
    public_base_url: str | None = None
    #: The Event Grid custom topic's access key (``aeg-sas-key``); None: no topic is served.
    topic_key: str | None = None

    def validate(self) -> EmulatorConfig:
        if self.clock not in ("wall", "manual"):
            raise ConfigError(f"--clock must be 'wall' or 'manual', got {self.clock!r}")
        if self.max_chunk_seconds <= 0:
            raise ConfigError("--max-chunk-duration must be > 0 seconds")
        if self.retention_seconds <= 0:
            raise ConfigError("--retention must be > 0 seconds")
        if self.event_delay_seconds < 0:
            raise ConfigError("--event-delay must be >= 0 seconds")
        if bool(self.event_queue_connection_string) != bool(self.event_queue_name):
            raise ConfigError("--event-queue-connection-string and --event-queue-name go together")
        if self.event_queue_encoding not in ("base64", "json"):
            raise ConfigError("--event-queue-encoding must be 'base64' or 'json'")
        if not self.region_host.lower().endswith(ALLOWED_MEDIA_HOST_SUFFIXES):
            raise ConfigError(
                f"--region-host must end with one of {', '.join(ALLOWED_MEDIA_HOST_SUFFIXES)}"
                f" (the hosts the SDK accepts), got {self.region_host!r}"
            )
        if self.topic_key is not None and not self.topic_key.strip():
            raise ConfigError("--topic-key must not be empty")
        if not self.resource_id.startswith("/subscriptions/"):
            raise ConfigError("--resource-id must be an ARM id starting with /subscriptions/")
        return self
