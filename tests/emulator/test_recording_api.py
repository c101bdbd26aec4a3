"""The real Call Automation SDK (sync and async) drives every recording operation and option."""

from __future__ import annotations

import asyncio
import importlib
import warnings

import pytest
from azure.communication.callautomation import (
    ChannelAffinity,
    CommunicationUserIdentifier,
    PhoneNumberIdentifier,
    RecordingChannel,
    RecordingContent,
    RecordingFormat,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.support.emulator import RunningEmulator, start_emulator

ALICE = "8:acs:00000000-0000-0000-0000-000000000001_alice"
BOB = "4:+15551230001"


def test_start_get_pause_resume_stop_with_server_call_locator(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE, BOB])
    with emulator.sdk_client() as client:
        started = client.start_recording(server_call_id=call["serverCallId"])
        assert started.recording_state == "active"
        assert started.recording_kind == "azureCommunicationServices"
        assert client.get_recording_properties(started.recording_id).recording_state == "active"
        client.pause_recording(started.recording_id)
        assert client.get_recording_properties(started.recording_id).recording_state == "inactive"
        client.resume_recording(started.recording_id)
        assert client.get_recording_properties(started.recording_id).recording_state == "active"
        client.stop_recording(started.recording_id)
        with pytest.raises(ResourceNotFoundError) as stopped:
            client.get_recording_properties(started.recording_id)
    assert stopped.value.error.code == "RecordingNotFound"


def _deprecated_locator(name: str):
    """The locator classes still work but warn on import; fetch them without the noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(importlib.import_module("azure.communication.callautomation"), name)


def test_locator_objects_are_still_accepted(emulator: RunningEmulator) -> None:
    """The deprecated locator classes send the same callLocator body as the keywords."""
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client:
        started = client.start_recording(
            _deprecated_locator("ServerCallLocator")(call["serverCallId"])
        )
    assert started.recording_state == "active"


def test_group_call_room_and_call_connection_locators(emulator: RunningEmulator) -> None:
    group = emulator.simulation.create_call(
        [ALICE], group_call_id="11111111-2222-3333-4444-555555555555"
    )
    room = emulator.simulation.create_call([BOB], room_id="99911122233344")
    direct = emulator.simulation.create_call([ALICE, BOB])
    with emulator.sdk_client() as client:
        by_group = client.start_recording(group_call_id=group["callId"])
        by_room = client.start_recording(_deprecated_locator("RoomCallLocator")(room["roomId"]))
        by_connection = client.start_recording(call_connection_id=direct["callConnectionId"])
    states = {
        r["recordingId"]: r["serverCallId"] for r in emulator.simulation.objects()["recordings"]
    }
    assert states[by_group.recording_id] == group["serverCallId"]
    assert states[by_room.recording_id] == room["serverCallId"]
    assert states[by_connection.recording_id] == direct["serverCallId"]


def test_pause_on_start_begins_inactive(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client:
        started = client.start_recording(server_call_id=call["serverCallId"], pause_on_start=True)
    assert started.recording_state == "inactive"


@pytest.mark.asyncio
async def test_async_client_drives_every_operation(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE, BOB])
    async with emulator.async_sdk_client() as client:
        started = await client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type=RecordingContent.AUDIO,
            recording_channel_type=RecordingChannel.UNMIXED,
            recording_format_type=RecordingFormat.WAV,
            audio_channel_participant_ordering=[PhoneNumberIdentifier("+15551230001")],
        )
        await client.pause_recording(started.recording_id)
        paused = await client.get_recording_properties(started.recording_id)
        await client.resume_recording(started.recording_id)
        resumed = await client.get_recording_properties(started.recording_id)
        emulator.simulation.advance_clock(2)
        await client.stop_recording(started.recording_id)
        event = emulator.simulation.wait_for_event(started.recording_id)
        chunk = event["data"]["recordingStorageInfo"]["recordingChunks"][0]
        response = await client.download_recording(chunk["metadataLocation"])
        metadata = await response.read()
        await client.delete_recording(chunk["deleteLocation"])
        with pytest.raises(ResourceNotFoundError):
            await client.download_recording(chunk["contentLocation"])
    assert (paused.recording_state, resumed.recording_state) == ("inactive", "active")
    assert b'"participantId": "4:+15551230001"' in metadata


VALID_COMBINATIONS = [
    ("audioVideo", "mixed", "mp4"),
    ("audio", "mixed", "wav"),
    ("audio", "mixed", "mp3"),
    ("audio", "unmixed", "wav"),
]


@pytest.mark.parametrize(("content", "channel", "fmt"), VALID_COMBINATIONS)
def test_valid_option_combinations_are_accepted(
    emulator: RunningEmulator, content: str, channel: str, fmt: str
) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client:
        started = client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type=content,
            recording_channel_type=channel,
            recording_format_type=fmt,
        )
    assert started.recording_state == "active"


def _affinity(channel: int, user: str) -> ChannelAffinity:
    return ChannelAffinity(target_participant=CommunicationUserIdentifier(user), channel=channel)


INVALID_OPTIONS = [
    pytest.param(
        {
            "recording_content_type": "audioVideo",
            "recording_channel_type": "unmixed",
            "recording_format_type": "mp4",
        },
        "recordingChannelType",
        id="audioVideo-unmixed",
    ),
    pytest.param(
        {
            "recording_content_type": "audioVideo",
            "recording_channel_type": "mixed",
            "recording_format_type": "wav",
        },
        "recordingFormatType",
        id="audioVideo-wav",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "mixed",
            "recording_format_type": "mp4",
        },
        "recordingFormatType",
        id="mixed-audio-mp4",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "recording_format_type": "mp3",
        },
        "recordingFormatType",
        id="unmixed-audio-mp3",
    ),
    pytest.param({"recording_content_type": "speech"}, "recordingContentType", id="content-enum"),
    pytest.param({"recording_channel_type": "stereo"}, "recordingChannelType", id="channel-enum"),
    pytest.param({"recording_format_type": "ogg"}, "recordingFormatType", id="format-enum"),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "mixed",
            "audio_channel_participant_ordering": [CommunicationUserIdentifier("a")],
        },
        "audioChannelParticipantOrdering",
        id="ordering-needs-unmixed",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "mixed",
            "channel_affinity": [_affinity(0, "a")],
        },
        "channelAffinity",
        id="affinity-needs-unmixed",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "audio_channel_participant_ordering": [
                CommunicationUserIdentifier(f"u{i}") for i in range(6)
            ],
        },
        "audioChannelParticipantOrdering",
        id="ordering-more-than-5",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "channel_affinity": [_affinity(i % 5, f"u{i}") for i in range(6)],
        },
        "channelAffinity",
        id="affinity-more-than-5",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "channel_affinity": [_affinity(5, "a")],
        },
        "channelAffinity[0].channel",
        id="affinity-channel-out-of-range",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "channel_affinity": [_affinity(-1, "a")],
        },
        "channelAffinity[0].channel",
        id="affinity-channel-negative",
    ),
    pytest.param(
        {
            "recording_content_type": "audio",
            "recording_channel_type": "unmixed",
            "channel_affinity": [_affinity(2, "a"), _affinity(2, "b")],
        },
        "channelAffinity",
        id="affinity-channel-not-unique",
    ),
    pytest.param(
        {"recording_state_callback_url": "not-a-url"},
        "recordingStateCallbackUri",
        id="callback-url",
    ),
]


@pytest.mark.parametrize(("options", "field"), INVALID_OPTIONS)
def test_invalid_options_are_rejected_naming_the_field(
    emulator: RunningEmulator, options: dict, field: str
) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client, pytest.raises(HttpResponseError) as raised:
        client.start_recording(server_call_id=call["serverCallId"], **options)
    assert raised.value.status_code == 400
    assert raised.value.error.code == "BadRequest"
    assert f"'{field}'" in raised.value.error.message


def test_unknown_call_and_ended_call_are_not_found(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    emulator.simulation.hangup(call["serverCallId"])
    with emulator.sdk_client() as client:
        with pytest.raises(ResourceNotFoundError) as unknown:
            client.start_recording(server_call_id="bm8tc3VjaC1jYWxs")
        with pytest.raises(ResourceNotFoundError) as ended:
            client.start_recording(server_call_id=call["serverCallId"])
    assert unknown.value.error.code == "CallNotFound"
    assert "has ended" in ended.value.error.message


def test_unknown_recording_id_is_not_found_for_every_operation(emulator: RunningEmulator) -> None:
    with emulator.sdk_client() as client:
        for operation in (
            client.get_recording_properties,
            client.pause_recording,
            client.resume_recording,
            client.stop_recording,
        ):
            with pytest.raises(ResourceNotFoundError) as raised:
                operation("bm90LWEtcmVjb3JkaW5n")
            assert raised.value.error.code == "RecordingNotFound"


def test_state_rules_pause_resume_idempotent_and_stopped_is_gone(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
        client.resume_recording(recording_id)  # already active: accepted, no change
        assert client.get_recording_properties(recording_id).recording_state == "active"
        client.pause_recording(recording_id)
        client.pause_recording(recording_id)  # already paused: accepted, no change
        assert client.get_recording_properties(recording_id).recording_state == "inactive"
        with pytest.raises(HttpResponseError) as busy:
            client.start_recording(server_call_id=call["serverCallId"])
        client.stop_recording(recording_id)
        for operation in (client.stop_recording, client.pause_recording, client.resume_recording):
            with pytest.raises(ResourceNotFoundError):
                operation(recording_id)
        again = client.start_recording(server_call_id=call["serverCallId"])
    assert busy.value.status_code == 409
    assert again.recording_id != recording_id


def test_hangup_stops_the_recording(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
        emulator.simulation.advance_clock(1)
        emulator.simulation.hangup(call["serverCallId"])
        with pytest.raises(ResourceNotFoundError):
            client.pause_recording(recording_id)
    event = emulator.simulation.wait_for_event(recording_id)
    assert event["data"]["sessionEndReason"] == "CallEnded"


def test_repeatability_request_id_returns_the_first_recording(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    headers = {"Repeatability-Request-ID": "5d9a3c1e-1111-4222-8333-944455556666"}
    with emulator.sdk_client() as client:
        first = client.start_recording(server_call_id=call["serverCallId"], headers=headers)
        second = client.start_recording(server_call_id=call["serverCallId"], headers=headers)
    assert first.recording_id == second.recording_id


@pytest.mark.asyncio
async def test_recording_ids_with_plus_slash_and_equals_round_trip(tmp_path) -> None:
    running = await asyncio.to_thread(
        start_emulator, tmp_path, extra_args=["--recording-id-suffix", "+/=="]
    )
    try:
        call = await asyncio.to_thread(running.simulation.create_call, [ALICE])
        with running.sdk_client() as client:
            sync_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
            client.pause_recording(sync_id)
            sync_state = client.get_recording_properties(sync_id).recording_state
            client.stop_recording(sync_id)
        async with running.async_sdk_client() as client:
            async_id = (
                await client.start_recording(server_call_id=call["serverCallId"])
            ).recording_id
            await client.pause_recording(async_id)
            async_state = (await client.get_recording_properties(async_id)).recording_state
            await client.stop_recording(async_id)
    finally:
        await asyncio.to_thread(running.stop)
    assert sync_id.endswith("+/==") and async_id.endswith("+/==")
    assert sync_state == async_state == "inactive"


def test_unsupported_api_version_is_rejected(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call([ALICE])
    with (
        emulator.sdk_client(api_version="2021-01-01") as client,
        pytest.raises(HttpResponseError) as raised,
    ):
        client.start_recording(server_call_id=call["serverCallId"])
    assert raised.value.status_code == 400
    assert raised.value.error.code == "UnsupportedApiVersion"
    assert "api-version" in raised.value.error.message


@pytest.mark.parametrize("api_version", ["2023-10-15", "2025-06-15", "2026-03-12"])
def test_known_api_versions_are_served(emulator: RunningEmulator, api_version: str) -> None:
    call = emulator.simulation.create_call([ALICE])
    with emulator.sdk_client(api_version=api_version) as client:
        assert (
            client.start_recording(server_call_id=call["serverCallId"]).recording_state == "active"
        )
