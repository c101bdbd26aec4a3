"""Events and metadata checked field by field against the Call Recording overview's schemas."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import time
import urllib.request
import uuid
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from azure.storage.queue import QueueClient

from local_runtime.processes import Azurite, free_port
from tests.emulator.helpers import fetch_chunks, record
from tests.support.emulator import RunningEmulator, start_emulator

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MEDIA_URL = re.compile(
    r"^https://[a-z0-9.-]+\.asm\.skype\.com/v1/objects/(?P<doc>[^/]+)(?P<rest>.*)$"
)
PEOPLE = [{"rawId": "8:acs:res_alice", "toneHz": 500}, {"rawId": "4:+15550000002", "toneHz": 900}]


def _check_event(event: dict, emulator: RunningEmulator, call: dict, recording_id: str) -> None:
    assert set(event) == {
        "id",
        "topic",
        "subject",
        "data",
        "eventType",
        "dataVersion",
        "metadataVersion",
        "eventTime",
    }
    uuid.UUID(event["id"])
    assert event["topic"] == emulator.resource_id
    assert re.match(
        r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Communication"
        r"/communicationServices/[^/]+$",
        event["topic"],
    )
    assert event["subject"] == (
        f"/recording/call/{call['callId']}/serverCallId/{call['serverCallId']}"
        f"/recordingId/{recording_id}"
    )
    assert event["eventType"] == "Microsoft.Communication.RecordingFileStatusUpdated"
    assert (event["dataVersion"], event["metadataVersion"]) == ("1.0", "1")
    assert ISO.match(event["eventTime"])
    data = event["data"]
    assert set(data) == {
        "recordingStorageInfo",
        "recordingStartTime",
        "recordingDurationMs",
        "sessionEndReason",
        "recordingContentType",
        "recordingChannelType",
        "recordingFormatType",
    }
    assert ISO.match(data["recordingStartTime"])
    assert isinstance(data["recordingDurationMs"], int)
    for index, chunk in enumerate(data["recordingStorageInfo"]["recordingChunks"]):
        assert set(chunk) == {
            "documentId",
            "index",
            "endReason",
            "metadataLocation",
            "contentLocation",
            "deleteLocation",
        }
        assert chunk["index"] == index
        for key, rest in (
            ("contentLocation", r"/content/(audio|video)"),
            ("metadataLocation", "/content/acsmetadata"),
            ("deleteLocation", ""),
        ):
            match = MEDIA_URL.match(chunk[key])
            assert match and match["doc"] == chunk["documentId"], chunk[key]
            assert re.fullmatch(rest, match["rest"]), chunk[key]


def test_event_and_metadata_fields(emulator: RunningEmulator) -> None:
    call, recording_id, event = record(
        emulator,
        PEOPLE,
        2,
        recording_content_type="audio",
        recording_channel_type="unmixed",
        recording_format_type="wav",
    )
    _check_event(event, emulator, call, recording_id)
    data = event["data"]
    assert (
        data["recordingContentType"],
        data["recordingChannelType"],
        data["recordingFormatType"],
    ) == (
        "audio",
        "unmixed",
        "wav",
    )
    assert data["recordingDurationMs"] == 2000
    assert data["sessionEndReason"] == "RecordingStopped"
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    metadata = chunk.metadata
    assert set(metadata) == {
        "resourceId",
        "callId",
        "chunkDocumentId",
        "chunkIndex",
        "chunkStartTime",
        "chunkDuration",
        "pauseResumeIntervals",
        "recordingInfo",
        "participants",
    }
    assert metadata["resourceId"] == emulator.immutable_resource_id
    assert metadata["callId"] == call["callId"]
    assert metadata["chunkDocumentId"] == chunk.event_chunk["documentId"]
    assert metadata["chunkIndex"] == 0
    assert metadata["chunkStartTime"] == data["recordingStartTime"]
    assert metadata["chunkDuration"] == 2000
    assert metadata["pauseResumeIntervals"] == []
    assert metadata["recordingInfo"] == {
        "contentType": "audio",
        "channelType": "unmixed",
        "format": "wav",
        "audioConfiguration": {"sampleRate": 16_000, "bitRate": 16_000 * 16 * 2, "channels": 2},
    }
    assert metadata["participants"] == [
        {"participantId": "8:acs:res_alice", "channel": 0},
        {"participantId": "4:+15550000002", "channel": 1},
    ]


def test_mixed_metadata_has_one_channel(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator,
        PEOPLE,
        1,
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="wav",
    )
    with emulator.sdk_client() as client:
        (chunk,) = fetch_chunks(emulator, client, event)
    audio_config = chunk.metadata["recordingInfo"]["audioConfiguration"]
    assert audio_config == {"sampleRate": 16_000, "bitRate": 256_000, "channels": 1}
    assert {p["channel"] for p in chunk.metadata["participants"]} == {0}


def _receive_one(client: QueueClient, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        messages = list(client.receive_messages(max_messages=32))
        if messages:
            return messages
        time.sleep(0.1)
    raise AssertionError(f"no message on queue {client.queue_name} after {timeout}s")


def test_queue_sink_writes_base64_event_json(emulator_with_queue: RunningEmulator) -> None:
    emulator = emulator_with_queue
    call, recording_id, _ = record(
        emulator, PEOPLE, 1, recording_content_type="audio", recording_format_type="mp3"
    )
    queue = QueueClient.from_connection_string(
        emulator.event_queue_connection_string, emulator.event_queue_name
    )
    (message,) = _receive_one(queue)
    event = json.loads(base64.b64decode(message.content))
    _check_event(event, emulator, call, recording_id)
    assert event["data"]["recordingFormatType"] == "mp3"


def test_queue_sink_can_write_plain_json(tmp_path: Path, azurite: Azurite) -> None:
    emulator = start_emulator(
        tmp_path, azurite=azurite, extra_args=["--event-queue-encoding", "json"]
    )
    try:
        call, recording_id, _ = record(emulator, PEOPLE, 1)
        queue = QueueClient.from_connection_string(
            emulator.event_queue_connection_string, emulator.event_queue_name
        )
        (message,) = _receive_one(queue)
    finally:
        emulator.stop()
    _check_event(json.loads(message.content), emulator, call, recording_id)


class Receiver:
    """A local HTTP endpoint that answers Event Grid's handshake and records what it gets."""

    def __init__(self, fail_first_notifications: int = 0) -> None:
        self.requests: list[tuple[dict, object]] = []
        self.failures_left = fail_first_notifications
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if request.headers.get("aeg-event-type") == "SubscriptionValidation":
            return web.json_response({"validationResponse": body[0]["data"]["validationCode"]})
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=503)
        return web.Response(status=200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def wait_for(self, count: int) -> None:
        for _ in range(600):
            if len(self.requests) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {self.requests}")


@pytest.mark.asyncio
async def test_webhook_sink_handshakes_then_posts_event_arrays(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        emulator = await asyncio.to_thread(
            start_emulator, tmp_path, extra_args=["--event-webhook", receiver.url]
        )
        try:
            call, recording_id, _ = await asyncio.to_thread(record, emulator, PEOPLE, 1)
            await receiver.wait_for(2)
        finally:
            await asyncio.to_thread(emulator.stop)
    (handshake_headers, handshake), (headers, events) = receiver.requests[:2]
    assert handshake_headers["aeg-event-type"] == "SubscriptionValidation"
    assert handshake[0]["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
    assert headers["aeg-event-type"] == "Notification"
    assert isinstance(events, list) and len(events) == 1
    _check_event(events[0], emulator, call, recording_id)


@pytest.mark.asyncio
async def test_webhook_delivery_is_retried_after_a_failure(tmp_path: Path) -> None:
    async with Receiver(fail_first_notifications=1) as receiver:
        emulator = await asyncio.to_thread(
            start_emulator, tmp_path, extra_args=["--event-webhook", receiver.url]
        )
        try:
            await asyncio.to_thread(record, emulator, PEOPLE, 1)
            await receiver.wait_for(3)
        finally:
            await asyncio.to_thread(emulator.stop)
    _, first, second = receiver.requests[:3]
    assert (first[0]["aeg-delivery-count"], second[0]["aeg-delivery-count"]) == ("0", "1")
    assert first[1] == second[1]


@pytest.mark.asyncio
async def test_state_callbacks_are_cloudevents_signed_with_served_keys(tmp_path: Path) -> None:
    async with Receiver() as receiver:
        emulator = await asyncio.to_thread(start_emulator, tmp_path)
        try:
            call = await asyncio.to_thread(emulator.simulation.create_call, PEOPLE)
            async with emulator.async_sdk_client() as client:
                started = await client.start_recording(
                    server_call_id=call["serverCallId"], recording_state_callback_url=receiver.url
                )
                await client.pause_recording(started.recording_id)
                await client.stop_recording(started.recording_id)
            await receiver.wait_for(3)
            metadata = await asyncio.to_thread(_get_json, emulator.oidc_metadata_url)
            jwks_client = jwt.PyJWKClient(metadata["jwks_uri"])
            tokens = [h["Authorization"].removeprefix("Bearer ") for h, _ in receiver.requests]
            keys = [
                await asyncio.to_thread(jwks_client.get_signing_key_from_jwt, t) for t in tokens
            ]
        finally:
            await asyncio.to_thread(emulator.stop)
    states = []
    for (_, body), token, key in zip(receiver.requests, tokens, keys, strict=True):
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=emulator.immutable_resource_id,
            issuer=metadata["issuer"],
        )
        assert claims["exp"] - claims["iat"] == 300
        (cloud_event,) = body
        assert cloud_event["specversion"] == "1.0"
        assert cloud_event["type"] == "Microsoft.Communication.RecordingStateChanged"
        assert cloud_event["data"]["recordingId"] == started.recording_id
        assert cloud_event["data"]["serverCallId"] == call["serverCallId"]
        assert cloud_event["data"]["callConnectionId"] == call["callConnectionId"]
        dt.datetime.fromisoformat(cloud_event["time"].replace("Z", "+00:00"))
        states.append(cloud_event["data"]["state"])
    assert states == ["active", "inactive", "inactive"]
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(tokens[0], keys[0].key, algorithms=["RS256"], audience="someone-else")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
