"""Recordings longer than the max chunk duration: continuous chunks, end reasons, totals."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from tests.emulator.helpers import fetch_chunks
from tests.emulator.media_checks import SAMPLE_RATE, read_video, read_wav, rms
from tests.support.emulator import RunningEmulator, start_emulator


def test_long_recording_is_split_into_continuous_chunks(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path, extra_args=["--max-chunk-duration", "2s"])
    try:
        sim = emulator.simulation
        call = sim.create_call([{"rawId": "8:acs:res_a", "toneHz": 700}])
        with emulator.sdk_client() as client:
            recording_id = client.start_recording(
                server_call_id=call["serverCallId"],
                recording_content_type="audio",
                recording_channel_type="mixed",
                recording_format_type="wav",
            ).recording_id
            sim.advance_clock(3)
            client.pause_recording(recording_id)
            sim.advance_clock(4)
            client.resume_recording(recording_id)
            sim.advance_clock(2.5)
            client.stop_recording(recording_id)
            event = sim.wait_for_event(recording_id)
            chunks = fetch_chunks(emulator, client, event)
    finally:
        emulator.stop()
    assert [c.event_chunk["index"] for c in chunks] == [0, 1, 2]
    assert [c.event_chunk["endReason"] for c in chunks] == [
        "ChunkMaximumSizeExceeded",
        "ChunkMaximumSizeExceeded",
        "SessionEnded",
    ]
    durations = [c.metadata["chunkDuration"] for c in chunks]
    assert durations == [2000, 2000, 1500]
    assert sum(durations) == event["data"]["recordingDurationMs"] == 5500
    samples = [read_wav(c.content).samples[:, 0] for c in chunks]
    assert [len(s) for s in samples] == [2 * SAMPLE_RATE, 2 * SAMPLE_RATE, 1.5 * SAMPLE_RATE]
    joined = np.concatenate(samples)
    assert rms(joined) > 0.1
    # Continuity: no silent gap or phase jump at the boundaries (the tone's derivative is bounded).
    step = np.abs(np.diff(joined)).max()
    assert step < 2 * np.pi * 700 / SAMPLE_RATE * 0.2, step
    # The pause (4 s, after 3 s of content) lies in the second chunk, which spans content 2-4 s.
    assert [len(c.metadata["pauseResumeIntervals"]) for c in chunks] == [0, 1, 0]
    assert chunks[1].metadata["pauseResumeIntervals"][0]["duration"] == 4000
    assert [c.metadata["chunkIndex"] for c in chunks] == [0, 1, 2]
    assert len({c.metadata["chunkDocumentId"] for c in chunks}) == 3


def test_mp4_chunks_add_up_to_the_recorded_frames(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path, extra_args=["--max-chunk-duration", "1s"])
    try:
        sim = emulator.simulation
        call = sim.create_call(["8:acs:res_a"])
        with emulator.sdk_client() as client:
            recording_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
            sim.advance_clock(3.5)
            client.stop_recording(recording_id)
            event = sim.wait_for_event(recording_id)
            chunks = fetch_chunks(emulator, client, event)
    finally:
        emulator.stop()
    frames = [read_video(c.content).frames for c in chunks]
    assert frames == [16, 16, 16, 8]
    assert event["data"]["recordingDurationMs"] == 3500


@pytest.mark.parametrize(
    "options",
    [
        {"recording_content_type": "audio", "recording_format_type": "wav"},
        {"recording_content_type": "audio", "recording_format_type": "mp3"},
        {"recording_content_type": "audioVideo", "recording_format_type": "mp4"},
    ],
    ids=["wav", "mp3", "mp4"],
)
def test_recording_paused_throughout_gives_one_empty_chunk(
    emulator: RunningEmulator, options: dict
) -> None:
    sim = emulator.simulation
    call = sim.create_call(["8:acs:res_a"])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"], pause_on_start=True, **options
        ).recording_id
        sim.advance_clock(3)
        client.stop_recording(recording_id)
        event = sim.wait_for_event(recording_id)
        (chunk,) = fetch_chunks(emulator, client, event)
    assert event["data"]["recordingDurationMs"] == 0
    assert chunk.event_chunk["endReason"] == "SessionEnded"
    assert chunk.metadata["chunkDuration"] == 0
    assert [i["duration"] for i in chunk.metadata["pauseResumeIntervals"]] == [3000]
    if options["recording_format_type"] == "mp3":
        # MP3 has no container that could be empty: the object is its ID3 tag and no frames.
        assert chunk.content.startswith(b"ID3") and len(chunk.content) < 1024
        return
    with av.open(io.BytesIO(chunk.content)) as container:  # an empty WAV/MP4 is still readable
        assert options["recording_format_type"] in container.format.name
        assert sum(1 for _ in container.decode(*container.streams)) == 0
