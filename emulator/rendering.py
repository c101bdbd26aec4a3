"""Render a stopped recording into chunk files plus one metadata document per chunk.

Runs in a worker thread (it is CPU and disk work); it only reads the call and recording it is
given and returns the new media objects, so the event loop keeps serving while it works.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emulator.clock import iso8601
from emulator.constants import (
    AAC_BIT_RATE,
    CHANNEL_UNMIXED,
    END_REASON_CHUNK_MAX,
    END_REASON_SESSION_ENDED,
    FORMAT_MP3,
    FORMAT_MP4,
    MP3_BIT_RATE,
    SAMPLE_RATE,
    SAMPLE_WIDTH_BYTES,
)
from emulator.ids import IdFactory
from emulator.media.mp3 import write_mp3
from emulator.media.mp4 import write_mp4
from emulator.media.timeline import ChunkPlan, RenderPlan, build_plan
from emulator.media.tones import SecondTables
from emulator.media.wav import write_wav
from emulator.models import Call, MediaObject, Recording

MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "mp4": "video/mp4"}


@dataclass(frozen=True)
class RenderSettings:
    max_chunk_seconds: float
    retention_seconds: float
    immutable_resource_id: str


@dataclass(frozen=True)
class RenderedChunk:
    media_object: MediaObject
    end_reason: str
    duration_ms: int


def render_recording(
    call: Call,
    recording: Recording,
    objects_dir: Path,
    settings: RenderSettings,
    ids: IdFactory,
    now: float,
) -> list[RenderedChunk]:
    plan = build_plan(call, recording, settings.max_chunk_seconds)
    channels = plan.channels
    tables = SecondTables(
        [t.tone_hz for t in plan.tracks], [t.channel for t in plan.tracks], channels
    )
    rendered = []
    for chunk in plan.chunks:
        document_id = ids.document_id()
        folder = objects_dir / document_id
        folder.mkdir(parents=True, exist_ok=True)
        fmt = recording.options.format_type
        content_path = folder / f"content.{fmt}"
        _write_media(content_path, fmt, chunk, plan, tables)
        metadata_path = folder / "metadata.json"
        metadata = chunk_metadata(call, recording, plan, chunk, document_id, settings)
        metadata_path.write_text(json.dumps(metadata, indent=2))
        last = chunk is plan.chunks[-1]
        media_object = MediaObject(
            document_id=document_id,
            recording_id=recording.recording_id,
            chunk_index=chunk.index,
            content_path=content_path,
            metadata_path=metadata_path,
            media_type=MEDIA_TYPES[fmt],
            created_at=now,
            expires_at=now + settings.retention_seconds,
        )
        rendered.append(
            RenderedChunk(
                media_object=media_object,
                end_reason=END_REASON_SESSION_ENDED if last else END_REASON_CHUNK_MAX,
                duration_ms=_ms(chunk.samples),
            )
        )
    return rendered


def _write_media(path: Path, fmt: str, chunk: ChunkPlan, plan: RenderPlan, tables) -> None:
    if fmt == FORMAT_MP4:
        write_mp4(path, chunk, plan.tracks, tables)
    elif fmt == FORMAT_MP3:
        write_mp3(path, chunk, tables)
    else:
        write_wav(path, chunk, tables, plan.channels)


def _ms(samples: int) -> int:
    return round(samples * 1000 / SAMPLE_RATE)


def audio_bit_rate(fmt: str, channels: int) -> int:
    if fmt == FORMAT_MP3:
        return MP3_BIT_RATE
    if fmt == FORMAT_MP4:
        return AAC_BIT_RATE
    return SAMPLE_RATE * SAMPLE_WIDTH_BYTES * 8 * channels


def chunk_metadata(
    call: Call,
    recording: Recording,
    plan: RenderPlan,
    chunk: ChunkPlan,
    document_id: str,
    settings: RenderSettings,
) -> dict:
    """The metadata document, every field of the overview's schema, with wire names."""
    options = recording.options
    unmixed = options.channel_type == CHANNEL_UNMIXED
    return {
        "resourceId": settings.immutable_resource_id,
        "callId": call.call_id,
        "chunkDocumentId": document_id,
        "chunkIndex": chunk.index,
        "chunkStartTime": iso8601(chunk.wall_start),
        "chunkDuration": _ms(chunk.samples),
        "pauseResumeIntervals": [
            {"startTime": iso8601(start), "duration": round(duration * 1000)}
            for start, duration in chunk.pauses
        ],
        "recordingInfo": {
            "contentType": options.content_type,
            "channelType": options.channel_type,
            "format": options.format_type,
            "audioConfiguration": {
                "sampleRate": SAMPLE_RATE,
                "bitRate": audio_bit_rate(options.format_type, plan.channels),
                "channels": plan.channels,
            },
        },
        "participants": [
            {"participantId": track.raw_id, "channel": track.channel if unmixed else 0}
            for track in plan.tracks
        ],
    }
