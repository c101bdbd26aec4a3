"""MP4 writer: H.264 1920x1080 at 16 fps with AAC 16 kHz mono, built by re-muxing.

Encoding an hour of 1080p takes minutes; the content is a handful of still tile layouts and
steady tones, so each distinct set of audible participants is encoded once into a small template
(a one-second closed GOP of video and a steady-state 8-second period of AAC), and the chunk is
written by repeating those packets with new timestamps. An hour re-muxes in seconds with
constant memory, and the file is a normal, decodable MP4.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from emulator.constants import AAC_BIT_RATE, SAMPLE_RATE, VIDEO_FPS, VIDEO_HEIGHT, VIDEO_WIDTH
from emulator.media.timeline import ChunkPlan, Piece, Track, samples_per_frame
from emulator.media.tones import SecondTables, tile_colour, tile_grid

AAC_FRAME = 1024
AUDIO_PERIOD_FRAMES = 125  # 125 x 1024 samples = 8 s: a whole number of seconds, so tones repeat
AUDIO_PERIOD = AAC_FRAME * AUDIO_PERIOD_FRAMES
GOP = VIDEO_FPS
_TILE_GAP = 8
_VIDEO_TB = Fraction(1, VIDEO_FPS)
_AUDIO_TB = Fraction(1, SAMPLE_RATE)


@dataclass
class _Template:
    """Encoded packets per audible set, plus the streams that carry their codec parameters."""

    container: av.container.InputContainer
    video: dict[tuple[int, ...], list[tuple[bytes, bool]]]
    audio: dict[tuple[int, ...], list[bytes]]


def render_frame(present: Sequence[int], tracks: Sequence[Track]) -> np.ndarray:
    """RGB frame with one solid tile per audible participant in a near-square grid."""
    frame = np.zeros((VIDEO_HEIGHT, VIDEO_WIDTH, 3), dtype=np.uint8)
    columns, rows = tile_grid(len(present))
    width, height = VIDEO_WIDTH // columns, VIDEO_HEIGHT // rows
    for slot, track_index in enumerate(present):
        column, row = slot % columns, slot // columns
        top, left = row * height + _TILE_GAP, column * width + _TILE_GAP
        frame[top : top + height - 2 * _TILE_GAP, left : left + width - 2 * _TILE_GAP] = (
            tile_colour(tracks[track_index].tile_index)
        )
    return frame


def tile_box(slot: int, count: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of tile ``slot`` of ``count``: lets tests sample tile colours."""
    columns, rows = tile_grid(count)
    width, height = VIDEO_WIDTH // columns, VIDEO_HEIGHT // rows
    column, row = slot % columns, slot // columns
    return (
        row * height + _TILE_GAP,
        column * width + _TILE_GAP,
        height - 2 * _TILE_GAP,
        width - 2 * _TILE_GAP,
    )


def _encode_template(sets: list[tuple[int, ...]], tracks: Sequence[Track], tables: SecondTables):
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=VIDEO_FPS)
        video.width, video.height, video.pix_fmt = VIDEO_WIDTH, VIDEO_HEIGHT, "yuv420p"
        video.options = {
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0",
            "preset": "ultrafast",
            "threads": "1",
            "crf": "23",
        }
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        audio.bit_rate = AAC_BIT_RATE
        for index, present in enumerate(sets):
            image = av.VideoFrame.from_ndarray(render_frame(present, tracks), format="rgb24")
            image = image.reformat(format="yuv420p")
            for position in range(GOP):
                image.pts = index * GOP + position
                image.time_base = _VIDEO_TB
                out.mux(video.encode(image))
            _encode_audio_periods(out, audio, tables.float_table(present), index)
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    buffer.seek(0)
    return buffer


def _encode_audio_periods(out, audio, second: np.ndarray, index: int) -> None:
    """Three periods per set; the middle one is taken, so its packets are in steady state."""
    base = index * 3 * AUDIO_PERIOD
    for second_index in range(3 * AUDIO_PERIOD // SAMPLE_RATE):
        frame = av.AudioFrame.from_ndarray(second.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = base + second_index * SAMPLE_RATE
        frame.time_base = _AUDIO_TB
        out.mux(audio.encode(frame))


def _load_template(sets: list[tuple[int, ...]], tracks: Sequence[Track], tables: SecondTables):
    container = av.open(_encode_template(sets, tracks, tables), "r")
    video_stream, audio_stream = container.streams.video[0], container.streams.audio[0]
    video_packets: list[tuple[bytes, bool]] = []
    audio_by_sample: dict[int, bytes] = {}
    for packet in container.demux(video_stream, audio_stream):
        if packet.size == 0 or packet.pts is None:
            continue
        if packet.stream is video_stream:
            video_packets.append((bytes(packet), bool(packet.is_keyframe)))
        else:
            sample = round(packet.pts * packet.time_base * SAMPLE_RATE)
            audio_by_sample[sample] = bytes(packet)
    template = _Template(container=container, video={}, audio={})
    for index, present in enumerate(sets):
        template.video[present] = video_packets[index * GOP : (index + 1) * GOP]
        middle = index * 3 * AUDIO_PERIOD + AUDIO_PERIOD
        template.audio[present] = [
            audio_by_sample[middle + k * AAC_FRAME] for k in range(AUDIO_PERIOD_FRAMES)
        ]
    return template


def _present_at(pieces: list[Piece], sample: int) -> tuple[int, ...]:
    for piece in pieces:
        if piece.start <= sample < piece.end:
            return piece.present
    return ()


def write_mp4(path: Path, chunk: ChunkPlan, tracks: Sequence[Track], tables: SecondTables) -> None:
    sets = sorted({piece.present for piece in chunk.pieces} | {()})
    template = _load_template(sets, tracks, tables)
    try:
        with av.open(str(path), "w", format="mp4") as out:
            video = out.add_stream_from_template(template.container.streams.video[0])
            audio = out.add_stream_from_template(template.container.streams.audio[0])
            out.start_encoding()  # writes the header even when the chunk has no content
            _mux_video(out, video, chunk, template)
            _mux_audio(out, audio, chunk, template)
    finally:
        template.container.close()


def _mux_video(out, stream, chunk: ChunkPlan, template: _Template) -> None:
    frame_samples = samples_per_frame()
    frames = chunk.samples // frame_samples
    run_set: tuple[int, ...] | None = None
    run_start = 0
    for frame_index in range(frames):
        middle = chunk.start + frame_index * frame_samples + frame_samples // 2
        present = _present_at(chunk.pieces, middle)
        if present != run_set:
            run_set, run_start = present, frame_index
        data, keyframe = template.video[present][(frame_index - run_start) % GOP]
        packet = av.Packet(data)
        packet.pts = packet.dts = frame_index
        packet.duration = 1
        packet.time_base = _VIDEO_TB
        packet.is_keyframe = keyframe
        packet.stream = stream
        out.mux(packet)


def _mux_audio(out, stream, chunk: ChunkPlan, template: _Template) -> None:
    frames = -(-chunk.samples // AAC_FRAME)
    for frame_index in range(frames):
        middle = chunk.start + frame_index * AAC_FRAME + AAC_FRAME // 2
        present = _present_at(chunk.pieces, min(middle, chunk.end - 1))
        packet = av.Packet(template.audio[present][frame_index % AUDIO_PERIOD_FRAMES])
        packet.pts = packet.dts = frame_index * AAC_FRAME
        packet.duration = AAC_FRAME
        packet.time_base = _AUDIO_TB
        packet.is_keyframe = True
        packet.stream = stream
        out.mux(packet)
