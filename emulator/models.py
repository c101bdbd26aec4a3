"""State of simulated calls, recordings and stored media objects.

Times are seconds on the emulator clock (see ``clock.py``). Presence and recording spans are
kept as intervals so the renderer can work out, for any instant of the recording, who is
audible and whether the recording was paused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Participant:
    raw_id: str
    tone_hz: int
    tile_index: int
    presence: list[list[float | None]] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.presence) and self.presence[-1][1] is None

    def present_at(self, moment: float) -> bool:
        return any(
            start <= moment and (end is None or moment < end)
            for start, end in self.presence
            if start is not None
        )


@dataclass
class Call:
    server_call_id: str
    call_id: str
    call_connection_id: str
    room_id: str | None
    started_at: float
    participants: dict[str, Participant] = field(default_factory=dict)
    ended_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True)
class RecordingOptions:
    content_type: str
    channel_type: str
    format_type: str
    participant_ordering: tuple[str, ...] = ()
    channel_affinity: tuple[tuple[int, str], ...] = ()
    callback_uri: str | None = None
    pause_on_start: bool = False


@dataclass
class Recording:
    recording_id: str
    server_call_id: str
    options: RecordingOptions
    started_at: float
    # Closed or open [start, end) spans during which media is recorded.
    active_spans: list[list[float | None]] = field(default_factory=list)
    pauses: list[list[float | None]] = field(default_factory=list)
    stopped_at: float | None = None
    session_end_reason: str | None = None
    render_status: str = "recording"  # recording -> rendering -> ready | failed
    document_ids: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "active" if self.active_spans and self.active_spans[-1][1] is None else "inactive"

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None


@dataclass
class MediaObject:
    """One recording chunk: its media file and its metadata document, under one documentId."""

    document_id: str
    recording_id: str
    chunk_index: int
    content_path: Path
    metadata_path: Path
    media_type: str
    created_at: float
    expires_at: float
    deleted_at: float | None = None

    def status(self, now: float) -> str:
        if self.deleted_at is not None:
            return "deleted"
        if now >= self.expires_at:
            return "expired"
        return "stored"
