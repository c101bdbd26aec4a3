"""Turn a recording's spans and its participants' presence into a sample-exact render plan.

Content time is recorded time with paused spans cut out. It is counted in 16 kHz samples so that
chunks, pieces and media lengths agree exactly; chunk boundaries are cut on content time, so the
chunks of a recording add up to its recorded duration and play on continuously.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from emulator.constants import MAX_UNMIXED_CHANNELS, SAMPLE_RATE, VIDEO_FPS
from emulator.models import Call, Recording


@dataclass(frozen=True)
class Track:
    """One participant as the recording sees it: tone, video tile and (unmixed) channel."""

    raw_id: str
    tone_hz: int
    tile_index: int
    channel: int


@dataclass(frozen=True)
class Piece:
    """Content samples [start, end) during which the same tracks are audible."""

    start: int
    end: int
    present: tuple[int, ...]


@dataclass
class ChunkPlan:
    index: int
    start: int
    end: int
    wall_start: float
    pauses: list[tuple[float, float]] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.end - self.start


@dataclass
class RenderPlan:
    tracks: list[Track]
    chunks: list[ChunkPlan]
    total_samples: int
    channels: int


@dataclass(frozen=True)
class _Span:
    wall_start: float
    wall_end: float
    content_start: int

    @property
    def content_end(self) -> int:
        return self.content_start + seconds_to_samples(self.wall_end - self.wall_start)


def seconds_to_samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def samples_per_frame() -> int:
    return SAMPLE_RATE // VIDEO_FPS


def assign_channels(
    ordered_ids: list[str], ordering: tuple[str, ...], affinity: tuple[tuple[int, str], ...]
) -> dict[str, int]:
    """Channel per participant: affinity first, then the requested ordering, then join order.

    Only five channels exist; participants beyond them are not in an unmixed recording.
    """
    channels: dict[str, int] = {raw_id: channel for channel, raw_id in affinity}
    free = [c for c in range(MAX_UNMIXED_CHANNELS) if c not in channels.values()]
    for raw_id in [*ordering, *ordered_ids]:
        if raw_id in channels or not free or raw_id not in ordered_ids:
            continue
        channels[raw_id] = free.pop(0)
    return channels


def build_plan(call: Call, recording: Recording, max_chunk_seconds: float) -> RenderPlan:
    spans = _content_spans(recording)
    total = spans[-1].content_end if spans else 0
    heard = [p for p in call.participants.values() if any(_heard_in(p, s) for s in spans)]
    unmixed = recording.options.channel_type == "unmixed"
    if unmixed:
        channel_of = assign_channels(
            [p.raw_id for p in heard],
            recording.options.participant_ordering,
            recording.options.channel_affinity,
        )
        tracks = [
            Track(p.raw_id, p.tone_hz, p.tile_index, channel_of[p.raw_id])
            for p in heard
            if p.raw_id in channel_of
        ]
        channels = max((t.channel for t in tracks), default=0) + 1
    else:
        tracks = [Track(p.raw_id, p.tone_hz, p.tile_index, 0) for p in heard]
        channels = 1
    pieces = _pieces(call, spans, tracks)
    chunk_samples = _chunk_samples(max_chunk_seconds)
    chunks = _chunks(recording, spans, pieces, total, chunk_samples)
    return RenderPlan(tracks=tracks, chunks=chunks, total_samples=total, channels=channels)


def _chunk_samples(max_chunk_seconds: float) -> int:
    """Whole video frames per chunk, so audio and video chunks cut at the same instant."""
    frame = samples_per_frame()
    return max(frame, seconds_to_samples(max_chunk_seconds) // frame * frame)


def _content_spans(recording: Recording) -> list[_Span]:
    spans: list[_Span] = []
    cursor = 0
    for start, end in recording.active_spans:
        assert start is not None and end is not None, "render only stopped recordings"
        span = _Span(start, end, cursor)
        if span.content_end > cursor:
            spans.append(span)
            cursor = span.content_end
    return spans


def _heard_in(participant, span: _Span) -> bool:
    return any(
        start is not None and start < span.wall_end and (end is None or end > span.wall_start)
        for start, end in participant.presence
    )


def _pieces(call: Call, spans: list[_Span], tracks: list[Track]) -> list[Piece]:
    pieces: list[Piece] = []
    by_id = call.participants
    for span in spans:
        cuts = {span.wall_start, span.wall_end}
        for track in tracks:
            for start, end in by_id[track.raw_id].presence:
                cuts.update(t for t in (start, end) if t is not None)
        moments = sorted(t for t in cuts if span.wall_start <= t <= span.wall_end)
        for left, right in pairwise(moments):
            middle = (left + right) / 2
            present = tuple(
                i for i, track in enumerate(tracks) if by_id[track.raw_id].present_at(middle)
            )
            start = span.content_start + seconds_to_samples(left - span.wall_start)
            end = span.content_start + seconds_to_samples(right - span.wall_start)
            if end > start:
                _append_piece(pieces, Piece(start, end, present))
    return pieces


def _append_piece(pieces: list[Piece], piece: Piece) -> None:
    if pieces and pieces[-1].present == piece.present and pieces[-1].end == piece.start:
        pieces[-1] = Piece(pieces[-1].start, piece.end, piece.present)
    else:
        pieces.append(piece)


def _wall_time_of(spans: list[_Span], sample: int, *, starting: bool = False) -> float:
    """Wall time of a content sample; at a pause boundary, ``starting`` picks the resume side."""
    for span in spans:
        upper_ok = sample < span.content_end if starting else sample <= span.content_end
        if span.content_start <= sample and upper_ok:
            return span.wall_start + (sample - span.content_start) / SAMPLE_RATE
    return spans[-1].wall_end if spans else 0.0


def _chunks(
    recording: Recording, spans: list[_Span], pieces: list[Piece], total: int, chunk_samples: int
) -> list[ChunkPlan]:
    chunks: list[ChunkPlan] = []
    start = 0
    while start < total or not chunks:
        end = min(total, start + chunk_samples)
        wall_start = (
            recording.started_at if not chunks else _wall_time_of(spans, start, starting=True)
        )
        chunk = ChunkPlan(index=len(chunks), start=start, end=end, wall_start=wall_start)
        chunk.pieces = [
            Piece(max(p.start, start), min(p.end, end), p.present)
            for p in pieces
            if p.start < end and p.end > start
        ]
        chunks.append(chunk)
        start = end
        if end >= total:
            break
    _attach_pauses(recording, spans, chunks)
    return chunks


def _attach_pauses(recording: Recording, spans: list[_Span], chunks: list[ChunkPlan]) -> None:
    """A pause belongs to the first chunk whose recorded content ends at or after it starts."""
    stop = recording.stopped_at if recording.stopped_at is not None else 0.0
    for start, end in recording.pauses:
        assert start is not None
        finished = stop if end is None else end
        if finished <= start:
            continue
        for chunk in chunks:
            if start <= _wall_time_of(spans, chunk.end) or chunk is chunks[-1]:
                chunk.pauses.append((start, finished - start))
                break
