"""WAV writer: 16-bit PCM at 16 kHz, mono (mixed) or one channel per participant (unmixed)."""

from __future__ import annotations

import wave
from pathlib import Path

from emulator.constants import SAMPLE_RATE, SAMPLE_WIDTH_BYTES
from emulator.media.timeline import ChunkPlan
from emulator.media.tones import SecondTables


def write_wav(path: Path, chunk: ChunkPlan, tables: SecondTables, channels: int) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(SAMPLE_WIDTH_BYTES)
        writer.setframerate(SAMPLE_RATE)
        writer.setnframes(chunk.samples)
        cursor = chunk.start
        for piece in chunk.pieces:
            _write_silence(writer, tables, cursor, piece.start)
            for block in tables.blocks(piece.start, piece.end, piece.present):
                writer.writeframesraw(block)
            cursor = piece.end
        _write_silence(writer, tables, cursor, chunk.end)


def _write_silence(writer: wave.Wave_write, tables: SecondTables, start: int, end: int) -> None:
    for block in tables.blocks(start, end, ()):
        writer.writeframesraw(block)
