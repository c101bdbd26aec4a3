"""Audio media read back from the emulator: length, format, and whose tone is on which channel."""

from __future__ import annotations

import numpy as np
from azure.communication.callautomation import ChannelAffinity, CommunicationUserIdentifier

from tests.emulator.helpers import download, fetch_chunks, record
from tests.emulator.media_checks import (
    SAMPLE_RATE,
    decode_audio,
    dominant_frequency,
    read_wav,
    rms,
    tone_levels_db,
)
from tests.support.emulator import RunningEmulator

PEOPLE = [
    {"rawId": "8:acs:res_alice", "toneHz": 500},
    {"rawId": "8:acs:res_bob", "toneHz": 900},
    {"rawId": "4:+15550000003", "toneHz": 1400},
    {"rawId": "8:acs:res_dan", "toneHz": 2200},
    {"rawId": "8:acs:res_eve", "toneHz": 3100},
]
TONES = [p["toneHz"] for p in PEOPLE]


def _assert_only_tone(channel: np.ndarray, tone: int) -> None:
    levels = tone_levels_db(channel, TONES)
    assert abs(dominant_frequency(channel) - tone) < 2, levels
    for other in TONES:
        if other != tone:
            assert levels[tone] - levels[other] >= 40, (tone, other, levels)


def test_unmixed_wav_has_one_participant_per_channel(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator,
        PEOPLE,
        3,
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    audio = read_wav(chunk.content)
    assert audio.sample_rate == 16_000
    assert audio.channels == 5
    assert audio.samples.shape[0] == 3 * SAMPLE_RATE
    channel_of = {p["participantId"]: p["channel"] for p in chunk.metadata["participants"]}
    for person in PEOPLE:
        _assert_only_tone(audio.samples[:, channel_of[person["rawId"]]], person["toneHz"])
    assert sorted(channel_of.values()) == [0, 1, 2, 3, 4]


def test_unmixed_ordering_and_affinity_are_honoured(emulator: RunningEmulator) -> None:
    people = PEOPLE[:4]
    _, _, event = record(
        emulator,
        people,
        2,
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
        audio_channel_participant_ordering=[CommunicationUserIdentifier("8:acs:res_dan")],
        channel_affinity=[
            ChannelAffinity(
                target_participant=CommunicationUserIdentifier("8:acs:res_bob"), channel=3
            )
        ],
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    audio = read_wav(chunk.content)
    channel_of = {p["participantId"]: p["channel"] for p in chunk.metadata["participants"]}
    assert channel_of == {
        "8:acs:res_bob": 3,  # affinity
        "8:acs:res_dan": 0,  # first in the ordering takes the lowest free channel
        "8:acs:res_alice": 1,  # the rest in join order
        "4:+15550000003": 2,
    }
    assert audio.channels == 4
    _assert_only_tone(audio.samples[:, 3], 900)
    _assert_only_tone(audio.samples[:, 0], 2200)


def test_unmixed_records_at_most_five_channels(emulator: RunningEmulator) -> None:
    six = [*PEOPLE, {"rawId": "8:acs:res_frank", "toneHz": 4100}]
    _, _, event = record(
        emulator,
        six,
        1,
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    assert read_wav(chunk.content).channels == 5
    assert len(chunk.metadata["participants"]) == 5
    assert "8:acs:res_frank" not in {p["participantId"] for p in chunk.metadata["participants"]}


def test_mixed_wav_is_mono_and_carries_every_tone(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator,
        PEOPLE[:3],
        2,
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="wav",
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    audio = read_wav(chunk.content)
    assert (audio.sample_rate, audio.channels, audio.samples.shape[0]) == (
        16_000,
        1,
        2 * SAMPLE_RATE,
    )
    levels = tone_levels_db(audio.samples[:, 0], TONES)
    loudest = max(levels.values())
    for tone in TONES[:3]:
        assert loudest - levels[tone] < 3, levels
    for tone in TONES[3:]:
        assert loudest - levels[tone] >= 40, levels


def test_mixed_mp3_decodes_to_16k_mono_with_every_tone(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator,
        PEOPLE[:2],
        4,
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="mp3",
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    assert chunk.content[:3] == b"ID3" or chunk.content[0] == 0xFF
    audio = decode_audio(chunk.content)
    assert (audio.sample_rate, audio.channels) == (16_000, 1)
    assert abs(audio.duration - 4.0) < 0.15, audio.duration
    levels = tone_levels_db(audio.samples[SAMPLE_RATE : 3 * SAMPLE_RATE, 0], TONES)
    assert abs(levels[500] - levels[900]) < 3, levels
    assert levels[500] - levels[2200] >= 30, levels
    assert chunk.metadata["recordingInfo"]["audioConfiguration"]["bitRate"] == 48_000


def test_paused_span_is_left_out_and_listed(emulator: RunningEmulator) -> None:
    sim = emulator.simulation
    call = sim.create_call(PEOPLE[:1])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_channel_type="mixed",
            recording_format_type="wav",
        ).recording_id
        sim.advance_clock(2)
        paused_at = sim.now()
        client.pause_recording(recording_id)
        sim.advance_clock(5)
        client.resume_recording(recording_id)
        sim.advance_clock(1)
        client.stop_recording(recording_id)
        event = sim.wait_for_event(recording_id)
        (chunk,) = fetch_chunks(emulator, client, event)
    audio = read_wav(chunk.content)
    assert audio.samples.shape[0] == 3 * SAMPLE_RATE  # 2 s + 1 s; the 5 s pause is not in it
    assert event["data"]["recordingDurationMs"] == 3000
    assert chunk.metadata["chunkDuration"] == 3000
    (interval,) = chunk.metadata["pauseResumeIntervals"]
    assert interval["duration"] == 5000
    assert interval["startTime"].startswith(_iso_seconds(paused_at))


def _iso_seconds(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_participant_who_leaves_and_joins_is_silent_in_between(emulator: RunningEmulator) -> None:
    sim = emulator.simulation
    call = sim.create_call(PEOPLE[:2])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_channel_type="unmixed",
            recording_format_type="wav",
        ).recording_id
        sim.advance_clock(1)
        sim.leave(call["serverCallId"], "8:acs:res_bob")
        sim.advance_clock(2)
        sim.join(call["serverCallId"], "8:acs:res_bob")
        sim.advance_clock(1)
        sim.hangup(call["serverCallId"])
        event = sim.wait_for_event(recording_id)
        content = download(
            client, event["data"]["recordingStorageInfo"]["recordingChunks"][0]["contentLocation"]
        )
    bob = read_wav(content).samples[:, 1]
    assert rms(bob[:SAMPLE_RATE]) > 0.1
    assert rms(bob[SAMPLE_RATE + 100 : 3 * SAMPLE_RATE - 100]) == 0.0
    assert rms(bob[3 * SAMPLE_RATE :]) > 0.1
    assert abs(dominant_frequency(bob[3 * SAMPLE_RATE :]) - 900) < 2


def test_participant_joining_mid_recording_gets_a_channel(emulator: RunningEmulator) -> None:
    sim = emulator.simulation
    call = sim.create_call(PEOPLE[:1])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_channel_type="unmixed",
            recording_format_type="wav",
        ).recording_id
        sim.advance_clock(1)
        sim.join(call["serverCallId"], {"rawId": "4:+15557654321", "toneHz": 1200})
        sim.advance_clock(1)
        client.stop_recording(recording_id)
        event = sim.wait_for_event(recording_id)
        (chunk,) = fetch_chunks(emulator, client, event)
    audio = read_wav(chunk.content)
    assert audio.channels == 2
    late = audio.samples[:, 1]
    assert rms(late[: SAMPLE_RATE - 10]) == 0.0
    assert abs(dominant_frequency(late[SAMPLE_RATE:]) - 1200) < 2
