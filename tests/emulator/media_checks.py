"""Read rendered media back and measure it: the checks the media tests assert on."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Audio:
    samples: np.ndarray  # shape (frames, channels), float in [-1, 1]
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate


def read_wav(data: bytes) -> Audio:
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getsampwidth() == 2, "WAV must be 16-bit PCM"
        frames = reader.readframes(reader.getnframes())
        channels = reader.getnchannels()
        rate = reader.getframerate()
    pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    return Audio(pcm.astype(np.float32) / 32768.0, rate)


def decode_audio(data: bytes) -> Audio:
    """Decode the first audio stream of an MP3 or MP4 with FFmpeg (PyAV)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        parts = [
            frame.to_ndarray().reshape(stream.codec_context.channels, -1)
            for frame in container.decode(stream)
        ]
    samples = np.concatenate(parts, axis=1).T
    return Audio(samples.astype(np.float32), rate)


def tone_levels_db(
    signal: np.ndarray, tones: list[int], sample_rate: int = SAMPLE_RATE
) -> dict[int, float]:
    """Spectral level (dB) at each tone frequency, using a Hann-windowed FFT."""
    windowed = signal * np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(windowed)) + 1e-12
    freqs = np.fft.rfftfreq(len(signal), 1 / sample_rate)
    levels = {}
    for tone in tones:
        band = (freqs > tone - 15) & (freqs < tone + 15)
        levels[tone] = 20 * np.log10(spectrum[band].max())
    return levels


def dominant_frequency(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / sample_rate)
    return float(freqs[int(np.argmax(spectrum[1:])) + 1])


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal)))) if len(signal) else 0.0


@dataclass
class Video:
    width: int
    height: int
    fps: float
    frames: int
    sample_frames: dict[int, np.ndarray]


def read_video(data: bytes, sample_at: tuple[int, ...] = ()) -> Video:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        fps = float(stream.average_rate)
        count = 0
        sampled = {}
        for index, frame in enumerate(container.decode(stream)):
            if index in sample_at:
                sampled[index] = frame.to_ndarray(format="rgb24")
            count += 1
    return Video(width, height, fps, count, sampled)
