"""Read the facts the archive needs from a chunk's ``acsmetadata`` JSON, tolerating oddities.

The metadata is copied byte for byte whatever it says; this module only extracts what the
manifest, the blob tags and the participant index use (participants and their channels, pause
intervals, chunk start and duration, recording info). A malformed metadata document must not
stop a recording from being archived, so problems are collected, logged and written to the
manifest instead of raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from azure.storage.blob import BlobClient

from recording_pipeline.input_rules import UnreadableJsonError, key_id_problem, load_json
from recording_pipeline.registry.schema import PARTICIPANT_PARTITION_PREFIX

MAX_METADATA_BYTES = 4 * 1024 * 1024
_HEADER_SAFE = re.compile(r"[A-Za-z0-9:.+_-]{1,64}")


@dataclass(frozen=True)
class Participant:
    participant_id: str
    channel: int | None


@dataclass
class ChunkMetadata:
    """What was understood of one chunk's metadata (empty when it could not be read)."""

    chunk_start_time: str | None = None
    chunk_duration_ms: int | None = None
    content_type: str | None = None
    channel_type: str | None = None
    format_type: str | None = None
    participants: list[Participant] = field(default_factory=list)
    pause_resume_intervals: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_chunk_metadata(blob: BlobClient, size: int) -> ChunkMetadata:
    """Parse the archived metadata blob (small: ACS writes a few KiB)."""
    if size > MAX_METADATA_BYTES:
        return ChunkMetadata(problems=[f"metadata is {size} bytes, more than {MAX_METADATA_BYTES}"])
    return parse_chunk_metadata(blob.download_blob().readall())


def parse_chunk_metadata(raw: bytes) -> ChunkMetadata:
    try:
        document = load_json(raw)
    except UnreadableJsonError as error:
        return ChunkMetadata(problems=[f"metadata {error.reason}"])
    if not isinstance(document, dict):
        return ChunkMetadata(problems=["metadata is not a JSON object"])
    result = ChunkMetadata()
    result.chunk_start_time = _header_safe(document.get("chunkStartTime"), "chunkStartTime", result)
    result.chunk_duration_ms = _whole_number(document.get("chunkDuration"), "chunkDuration", result)
    info = document.get("recordingInfo")
    if isinstance(info, dict):
        result.content_type = _choice(info.get("contentType"), ("audio", "audioVideo"))
        result.channel_type = _choice(info.get("channelType"), ("mixed", "unmixed"))
        result.format_type = _choice(info.get("format"), ("wav", "mp3", "mp4"))
    result.participants = _participants(document.get("participants"), result)
    result.pause_resume_intervals = _intervals(document.get("pauseResumeIntervals"), result)
    return result


def _participants(raw: Any, result: ChunkMetadata) -> list[Participant]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        result.problems.append("participants is not an array")
        return []
    participants = []
    for position, item in enumerate(raw):
        pid = item.get("participantId") if isinstance(item, dict) else None
        # It keys the participant index: an id that cannot be a Table key is not indexed.
        if not isinstance(pid, str) or key_id_problem(pid, key_prefix=PARTICIPANT_PARTITION_PREFIX):
            result.problems.append(f"participants[{position}] has no usable participantId")
            continue
        channel = item.get("channel")
        valid_channel = isinstance(channel, int) and not isinstance(channel, bool) and channel >= 0
        participants.append(Participant(pid, channel if valid_channel else None))
    return participants


def _intervals(raw: Any, result: ChunkMetadata) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        result.problems.append("pauseResumeIntervals is not an array")
        return []
    intervals = []
    for position, item in enumerate(raw):
        start = item.get("startTime") if isinstance(item, dict) else None
        duration = item.get("duration") if isinstance(item, dict) else None
        if (
            not isinstance(start, str)
            or isinstance(duration, bool)
            or not isinstance(duration, int)
        ):
            result.problems.append(f"pauseResumeIntervals[{position}] is malformed")
            continue
        intervals.append({"startTime": start, "durationMs": duration})
    return intervals


def _header_safe(value: Any, name: str, result: ChunkMetadata) -> str | None:
    """Values copied into blob metadata and tags must be short and plain ASCII."""
    if value is None:
        return None
    if isinstance(value, str) and _HEADER_SAFE.fullmatch(value):
        return value
    result.problems.append(f"{name} is not a plain ISO 8601 string")
    return None


def _whole_number(value: Any, name: str, result: ChunkMetadata) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        result.problems.append(f"{name} is not a non-negative number")
        return None
    return int(value)


def _choice(value: Any, choices: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in choices else None
