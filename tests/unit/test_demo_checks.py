"""The demo's media checks tell a present tone from an absent one."""

from __future__ import annotations

import numpy as np

from local_runtime.demo import _carries_tone, _dominant_hz

RATE = 16000


def _tones(*frequencies: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return sum(np.sin(2 * np.pi * f * t) for f in frequencies) * 8000


def test_mixed_tones_are_found_and_absent_ones_are_not() -> None:
    mixed = _tones(440, 660)
    assert _carries_tone(mixed, RATE, 440)
    assert _carries_tone(mixed, RATE, 660)
    assert not _carries_tone(mixed, RATE, 990)


def test_dominant_frequency_of_a_channel() -> None:
    assert abs(_dominant_hz(_tones(990), RATE) - 990) < 2
