"""Mixed MP4 read back: 1920x1080 at 16 fps, one tile colour and one tone per participant."""

from __future__ import annotations

import numpy as np

from emulator.media.mp4 import tile_box
from emulator.media.tones import tile_colour
from tests.emulator.helpers import fetch_chunks
from tests.emulator.media_checks import decode_audio, read_video, tone_levels_db
from tests.support.emulator import RunningEmulator

ALICE = {"rawId": "8:acs:res_alice", "toneHz": 600}
BOB = {"rawId": "4:+15550000002", "toneHz": 1500}


def _tile_rgb(frame: np.ndarray, slot: int, count: int) -> np.ndarray:
    top, left, height, width = tile_box(slot, count)
    centre = frame[
        top + height // 2 - 5 : top + height // 2 + 5, left + width // 2 - 5 : left + width // 2 + 5
    ]
    return centre.reshape(-1, 3).mean(axis=0)


def test_mixed_mp4_dimensions_frames_tiles_and_tones(emulator: RunningEmulator) -> None:
    sim = emulator.simulation
    call = sim.create_call([ALICE])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audioVideo",
            recording_channel_type="mixed",
            recording_format_type="mp4",
        ).recording_id
        sim.advance_clock(2)
        sim.join(call["serverCallId"], BOB)
        sim.advance_clock(2)
        client.stop_recording(recording_id)
        event = sim.wait_for_event(recording_id)
        (chunk,) = fetch_chunks(emulator, client, event)
    assert chunk.event_chunk["contentLocation"].endswith("/content/video")
    video = read_video(chunk.content, sample_at=(8, 48))
    assert (video.width, video.height, video.fps) == (1920, 1080, 16.0)
    assert video.frames == 4 * 16
    alone, together = video.sample_frames[8], video.sample_frames[48]
    assert np.allclose(_tile_rgb(alone, 0, 1), tile_colour(0), atol=12)
    assert np.allclose(_tile_rgb(together, 0, 2), tile_colour(0), atol=12)
    assert np.allclose(_tile_rgb(together, 1, 2), tile_colour(1), atol=12)
    audio = decode_audio(chunk.content)
    assert (audio.sample_rate, audio.channels) == (16_000, 1)
    assert abs(audio.duration - 4.0) < 0.1
    first = tone_levels_db(audio.samples[4000:28000, 0], [600, 1500])
    second = tone_levels_db(audio.samples[36000:60000, 0], [600, 1500])
    assert first[600] - first[1500] >= 30, first
    assert abs(second[600] - second[1500]) < 3, second
    config = chunk.metadata["recordingInfo"]
    assert config["contentType"] == "audioVideo"
    assert config["audioConfiguration"] == {"sampleRate": 16_000, "bitRate": 48_000, "channels": 1}
