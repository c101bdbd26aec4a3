"""MP3 writer: mixed mono 16 kHz at 48 kbit/s CBR, built by re-muxing a steady-state period.

Encoding an hour with LAME takes tens of seconds. With the bit reservoir off every MP3 frame
stands alone (216 bytes at this rate), and a set of steady tones repeats every 18 s (500 frames
of 576 samples, a whole number of seconds), so each set of audible participants is encoded once
for three periods, the middle period's frames are kept, and the chunk is written by repeating
them with new timestamps: an hour in about a second, constant memory.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av

from emulator.constants import MP3_BIT_RATE, SAMPLE_RATE
from emulator.media.timeline import ChunkPlan, Piece
from emulator.media.tones import SecondTables

MP3_FRAME = 576  # samples per MPEG-2 Layer III frame at 16 kHz
PERIOD_FRAMES = 500  # 500 x 576 = 288000 samples = 18 s: tones with whole hertz repeat exactly
PERIOD = MP3_FRAME * PERIOD_FRAMES
_TB = Fraction(1, SAMPLE_RATE)


def _encode_periods(second, container_format: str = "mp3") -> io.BytesIO:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as out:
        stream = out.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = MP3_BIT_RATE
        stream.options = {"reservoir": "0"}
        samples = second.reshape(1, -1)
        for index in range(3 * PERIOD // SAMPLE_RATE):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, index * SAMPLE_RATE, _TB
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    buffer.seek(0)
    return buffer


def _period_frames(container: av.container.InputContainer) -> list[bytes]:
    stream = container.streams.audio[0]
    by_sample = {
        round(packet.pts * packet.time_base * SAMPLE_RATE): bytes(packet)
        for packet in container.demux(stream)
        if packet.size and packet.pts is not None
    }
    return [by_sample[PERIOD + k * MP3_FRAME] for k in range(PERIOD_FRAMES)]


def _present_at(pieces: list[Piece], sample: int) -> tuple[int, ...]:
    for piece in pieces:
        if piece.start <= sample < piece.end:
            return piece.present
    return ()


def write_mp3(path: Path, chunk: ChunkPlan, tables: SecondTables) -> None:
    sets = sorted({piece.present for piece in chunk.pieces} | {()})
    templates = {
        present: av.open(_encode_periods(tables.float_table(present)), "r") for present in sets
    }
    try:
        frames = {present: _period_frames(container) for present, container in templates.items()}
        template_stream = templates[()].streams.audio[0]
        with av.open(str(path), "w", format="mp3") as out:
            stream = out.add_stream_from_template(template_stream)
            out.start_encoding()  # writes the header even when the chunk has no content
            count = -(-chunk.samples // MP3_FRAME)
            for index in range(count):
                middle = min(chunk.start + index * MP3_FRAME + MP3_FRAME // 2, chunk.end - 1)
                packet = av.Packet(frames[_present_at(chunk.pieces, middle)][index % PERIOD_FRAMES])
                packet.pts = packet.dts = index * MP3_FRAME
                packet.duration = MP3_FRAME
                packet.time_base = _TB
                packet.stream = stream
                out.mux(packet)
    finally:
        for container in templates.values():
            container.close()
