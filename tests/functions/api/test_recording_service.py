"""RecordingService with the real ``aio`` Call Automation SDK and an injected async transport.

The transport records every request the SDK sends and answers with a canned response, so these
tests see the exact wire requests (paths, headers, body) and every error the SDK raises.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import unquote, urlparse

import pytest
import requests
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.rest._requests_asyncio import RestAsyncioRequestsTransportResponse

from recording_pipeline.api.service import (
    AcsAuthError,
    AcsConflictError,
    AcsError,
    AcsNotFoundError,
    AcsRejectedError,
    AcsUnavailableError,
    RecordingService,
    repeatability_id,
)
from recording_pipeline.recording_options import RecordingOptions
from recording_pipeline.settings import Settings
from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING

ACCESS_KEY = "c2VjcmV0LWFjY2Vzcy1rZXktbmV2ZXItc2hvd24="
SETTINGS = Settings.from_env(
    {
        "ACS_ENDPOINT": "https://contoso.communication.azure.com",
        "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
        "Microsoft.Communication/communicationServices/acs",
        "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
        "ACS_ACCESS_KEY": ACCESS_KEY,
        "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
    }
)
OPTIONS = RecordingOptions(
    server_call_id="c2VydmVyLWNhbGw",
    call_connection_id=None,
    content="audio",
    channel="unmixed",
    format="wav",
    pause_on_start=True,
    participant_ordering=("8:acs:bob",),
    channel_affinity=(("8:acs:alice", 3),),
    callback_url=None,
)
RECORDING_ID = "eyJhIjoiYiJ9+/=="

Respond = Callable[[HttpRequest], AsyncHttpResponse]


class WireTransport(AsyncHttpTransport[HttpRequest, AsyncHttpResponse]):
    """The network at the bottom of the SDK's real async pipeline, replaced by ``respond``.

    The service's client is the ``aio`` one, so its pipeline awaits the transport: this one
    records each request exactly as signed and serialized, and hands back a real azure-core
    async response, so the SDK's own deserialization and error handling run unchanged.
    """

    def __init__(self, respond: Respond) -> None:
        self.requests: list[HttpRequest] = []
        self.closed = False
        self._respond = respond

    async def send(self, request: HttpRequest, **_: Any) -> AsyncHttpResponse:
        self.requests.append(request)
        response = self._respond(request)
        await response.read()  # buffered, as azure-core does for every non-streaming call
        return response

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Respond:
    """A responder that answers ``status`` with ``body`` as JSON, as ACS would."""

    def respond(request: HttpRequest) -> AsyncHttpResponse:
        raw = requests.Response()
        raw.status_code = status
        raw.raw = io.BytesIO(b"" if body is None else json.dumps(body).encode())
        raw.headers.update({"Content-Type": "application/json", **(headers or {})})
        return RestAsyncioRequestsTransportResponse(request=request, internal_response=raw)

    return respond


@asynccontextmanager
async def service_with(respond: Respond) -> AsyncIterator[tuple[RecordingService, WireTransport]]:
    """The service on ``respond``, closed afterwards so no test leaks an open ``aio`` client."""
    transport = WireTransport(respond)
    service = RecordingService.from_settings(SETTINGS, transport=transport)
    try:
        yield service, transport
    finally:
        await service.close()


def sent(transport: WireTransport, index: int = -1) -> HttpRequest:
    return transport.requests[index]


STARTED = {"recordingId": RECORDING_ID, "recordingState": "inactive", "recordingKind": "acs"}


@pytest.mark.asyncio
async def test_start_sends_every_option_and_the_repeatability_headers() -> None:
    first_sent = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with service_with(answer(200, STARTED)) as (service, transport):
        live = await service.start(
            OPTIONS,
            callback_url="https://app.example/api/callbacks",
            repeatability_request_id=repeatability_id("key-1"),
            first_sent=first_sent,
        )

    assert (live.recording_id, live.state, live.recording_kind) == (RECORDING_ID, "inactive", "acs")
    request = sent(transport)
    assert request.method == "POST"
    assert urlparse(request.url).path == "/calling/recordings"
    assert request.headers["Repeatability-Request-ID"] == repeatability_id("key-1")
    assert request.headers["Repeatability-First-Sent"] == "Fri, 02 Jan 2026 03:04:05 GMT"
    assert request.headers["Authorization"].startswith("HMAC-SHA256 ")
    body = json.loads(request.content)
    assert body["callLocator"] == {"kind": "serverCallLocator", "serverCallId": "c2VydmVyLWNhbGw"}
    assert body["recordingContentType"] == "audio"
    assert body["recordingChannelType"] == "unmixed"
    assert body["recordingFormatType"] == "wav"
    assert body["pauseOnStart"] is True
    assert body["recordingStateCallbackUri"] == "https://app.example/api/callbacks"
    assert [p["rawId"] for p in body["audioChannelParticipantOrdering"]] == ["8:acs:bob"]
    assert [(a["participant"]["rawId"], a["channel"]) for a in body["channelAffinity"]] == [
        ("8:acs:alice", 3)
    ]


def test_same_idempotency_key_gives_the_same_repeatability_id() -> None:
    assert repeatability_id("key-1") == repeatability_id("key-1")
    assert repeatability_id("key-1") != repeatability_id("key-2")


@pytest.mark.asyncio
async def test_start_by_call_connection_id_sends_no_call_locator() -> None:
    options = RecordingOptions(
        server_call_id=None,
        call_connection_id="conn-1",
        content="audioVideo",
        channel="mixed",
        format="mp4",
        pause_on_start=False,
        participant_ordering=(),
        channel_affinity=(),
        callback_url=None,
    )
    async with service_with(answer(200, STARTED)) as (service, transport):
        await service.start(options, callback_url="https://app.example/api/callbacks")
    body = json.loads(sent(transport).content)
    assert body["callConnectionId"] == "conn-1"
    assert "callLocator" not in body


@pytest.mark.parametrize(
    ("operation", "method", "suffix", "status"),
    [
        ("get", "GET", "", 200),
        ("pause", "POST", ":pause", 202),
        ("resume", "POST", ":resume", 202),
        ("stop", "DELETE", "", 204),
    ],
)
@pytest.mark.asyncio
async def test_operations_send_the_recording_id_percent_encoded(
    operation: str, method: str, suffix: str, status: int
) -> None:
    body = STARTED if operation == "get" else None
    async with service_with(answer(status, body)) as (service, transport):
        await getattr(service, operation)(RECORDING_ID)
    request = sent(transport)
    assert request.method == method
    path = urlparse(request.url).path
    assert "+" not in path.removeprefix("/calling/recordings/")
    assert unquote(path) == f"/calling/recordings/{RECORDING_ID}{suffix}"


@pytest.mark.parametrize(
    ("status", "headers", "error_type", "words"),
    [
        (400, {}, AcsRejectedError, "BadRequest"),
        (401, {}, AcsAuthError, "credential"),
        (403, {}, AcsAuthError, "permissions"),
        (404, {}, AcsNotFoundError, "recording"),
        (409, {}, AcsConflictError, "current state"),
        (429, {"Retry-After": "17"}, AcsUnavailableError, "429"),
        (500, {}, AcsUnavailableError, "500"),
        (503, {"Retry-After": "99999"}, AcsUnavailableError, "503"),
    ],
)
@pytest.mark.asyncio
async def test_acs_errors_become_domain_errors(
    status: int, headers: dict[str, str], error_type: type[AcsError], words: str
) -> None:
    body = {"error": {"code": "BadRequest" if status == 400 else "Code", "message": "m"}}
    async with service_with(answer(status, body, headers)) as (service, transport):
        with pytest.raises(error_type) as caught:
            await service.pause(RECORDING_ID)
    assert words in caught.value.message
    assert ACCESS_KEY not in caught.value.message
    assert len(transport.requests) == 1  # no retries inside a request: the caller retries
    if isinstance(caught.value, AcsUnavailableError):
        expected = {"17": 17, "99999": 300}.get(headers.get("Retry-After", ""), 5)
        assert caught.value.retry_after_seconds == expected


@pytest.mark.asyncio
async def test_unreachable_acs_is_unavailable() -> None:
    def refuse(request: HttpRequest) -> NoReturn:
        raise ServiceRequestError("connection refused")

    async with service_with(refuse) as (service, transport):
        with pytest.raises(AcsUnavailableError) as caught:
            await service.get(RECORDING_ID)
    assert len(transport.requests) == 1
    assert caught.value.retry_after_seconds == 5


def test_service_refuses_a_missing_client() -> None:
    with pytest.raises(ValueError, match="client"):
        RecordingService(None)  # type: ignore[arg-type]
