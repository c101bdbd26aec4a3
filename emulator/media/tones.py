"""Per-participant test signals: a pure tone each, and a solid-colour video tile each.

Tones are whole numbers of hertz, so a one-second table repeats with no phase jump and long
media is tiled from it; an FFT of any channel then shows which participant it carries.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator, Sequence

import numpy as np

from emulator.constants import SAMPLE_RATE, TONE_AMPLITUDE


def tone_table(tone_hz: int) -> np.ndarray:
    """One second of the tone as float32 in [-1, 1]."""
    n = np.arange(SAMPLE_RATE, dtype=np.float64)
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * tone_hz * n / SAMPLE_RATE)).astype(np.float32)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")


class SecondTables:
    """One-second interleaved PCM tables per set of audible tracks, built once and reused."""

    def __init__(self, tones_hz: Sequence[int], channel_of: Sequence[int], channels: int) -> None:
        self._tones = [tone_table(hz) for hz in tones_hz]
        self._channel_of = list(channel_of)
        self._channels = channels
        self._cache: dict[tuple[int, ...], bytes] = {}

    @property
    def frame_bytes(self) -> int:
        return 2 * self._channels

    def table(self, present: tuple[int, ...]) -> bytes:
        if present not in self._cache:
            block = np.zeros((SAMPLE_RATE, self._channels), dtype=np.float32)
            for track in present:
                block[:, self._channel_of[track]] += self._tones[track]
            self._cache[present] = to_pcm16(block).tobytes()
        return self._cache[present]

    def float_table(self, present: tuple[int, ...]) -> np.ndarray:
        """Mono float table (mixed) for encoders that take float samples."""
        block = np.zeros(SAMPLE_RATE, dtype=np.float32)
        for track in present:
            block += self._tones[track]
        return block

    def blocks(self, start: int, end: int, present: tuple[int, ...]) -> Iterator[memoryview]:
        """PCM for content samples [start, end), in slices of at most one second."""
        table = memoryview(self.table(present))
        position = start
        while position < end:
            offset = position % SAMPLE_RATE
            count = min(SAMPLE_RATE - offset, end - position)
            yield table[offset * self.frame_bytes : (offset + count) * self.frame_bytes]
            position += count


def tile_colour(tile_index: int) -> tuple[int, int, int]:
    """A saturated colour per participant, spread around the hue circle by the golden ratio."""
    hue = (tile_index * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return round(red * 255), round(green * 255), round(blue * 255)


def tile_grid(count: int) -> tuple[int, int]:
    """(columns, rows) of the default tile arrangement for ``count`` video tiles."""
    columns = 1
    while columns * columns < count:
        columns += 1
    rows = max(1, -(-count // columns))
    return columns, rows
