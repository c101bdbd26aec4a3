"""The recording operations on ACS, behind one small class with domain errors.

The API never sees azure-core exceptions: :class:`RecordingService` turns them into the few
outcomes a caller can act on (unknown recording, conflict, ACS refused this app's identity,
ACS throttled or down with a retry hint). The Call Automation client is built by
:mod:`recording_pipeline.clients`; tests inject an azure-core ``transport`` to see exactly what
goes on the wire.

The operations are coroutines on the ``aio`` client: the API awaits ACS on its event loop
instead of handing each call to a worker thread and back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from azure.communication.callautomation import ChannelAffinity
from azure.communication.callautomation._shared.models import identifier_from_raw_id
from azure.communication.callautomation.aio import (
    CallAutomationClient as AsyncCallAutomationClient,
)
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from recording_pipeline.clients import acs_async_credential, call_automation_client_async
from recording_pipeline.recording_options import RecordingOptions
from recording_pipeline.settings import Settings

DEFAULT_RETRY_AFTER_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 300
# Fixed namespace: the same Idempotency-Key always maps to the same Repeatability-Request-ID.
_REPEATABILITY_NAMESPACE = uuid.UUID("5b0f4f63-8a8e-4a55-9a43-2f7cf0d1c6a1")


class AcsError(Exception):
    """Base of the outcomes the API maps to an answer; ``message`` is safe to show a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AcsNotFoundError(AcsError):
    """ACS does not know the recording (or, for a start, the call)."""


class AcsConflictError(AcsError):
    """ACS refused the operation in the recording's or call's current state."""


class AcsRejectedError(AcsError):
    """ACS refused the request itself (a rule this API does not check, e.g. an unknown id)."""


class AcsAuthError(AcsError):
    """ACS refused this app's credential or configuration: an operator must fix it."""


class AcsUnavailableError(AcsError):
    """ACS throttled, failed or could not be reached; retrying later can succeed."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class LiveRecording:
    """What ACS says about a recording right now."""

    recording_id: str
    state: str
    recording_kind: str | None


def repeatability_id(idempotency_key: str) -> str:
    """The Repeatability-Request-ID ACS dedupes on, derived from the client's Idempotency-Key.

    ACS wants a UUID; a name-based UUID lets every retry (from any instance) send the same one.
    """
    return str(uuid.uuid5(_REPEATABILITY_NAMESPACE, idempotency_key))


class RecordingService:
    """Start, read, pause, resume and stop recordings on ACS.

    :param client: an ``aio`` Call Automation client; use :meth:`from_settings` outside tests.
    :param credential: the client's credential, closed with it when it has a ``close``.
    """

    def __init__(self, client: AsyncCallAutomationClient, *, credential: Any = None) -> None:
        if client is None:
            raise ValueError("client can not be None")
        self._client = client
        self._credential = credential

    @classmethod
    def from_settings(cls, settings: Settings, **pipeline_options: Any) -> RecordingService:
        """Build the service with the app's ACS identity.

        The API answers throttling with 503 + Retry-After instead of waiting inside a request, so
        the client does not retry; timeouts keep a hung ACS from holding a request forever.
        """
        options: dict[str, Any] = {
            "retry_total": 0,
            "connection_timeout": 10,
            "read_timeout": 30,
            **pipeline_options,
        }
        credential = acs_async_credential(settings)
        return cls(
            call_automation_client_async(settings, credential, **options), credential=credential
        )

    async def start(
        self,
        options: RecordingOptions,
        *,
        callback_url: str,
        repeatability_request_id: str | None = None,
        first_sent: datetime | None = None,
    ) -> LiveRecording:
        """Start recording the call ``options`` locates.

        :param callback_url: where ACS sends RecordingStateChanged / StartRecordingFailed.
        :param repeatability_request_id: same value on a retry, so ACS starts only once.
        :param first_sent: when the first attempt with this repeatability id was sent.
        :raises AcsError: one of its subclasses.
        """
        headers: dict[str, str] = {}
        if repeatability_request_id is not None:
            headers["Repeatability-Request-ID"] = repeatability_request_id
        if first_sent is not None:
            headers["Repeatability-First-Sent"] = format_datetime(first_sent, usegmt=True)
        settings: dict[str, Any] = {
            "recording_state_callback_url": callback_url,
            "recording_content_type": options.content,
            "recording_channel_type": options.channel,
            "recording_format_type": options.format,
            "pause_on_start": options.pause_on_start,
            "audio_channel_participant_ordering": [
                identifier_from_raw_id(raw_id) for raw_id in options.participant_ordering
            ]
            or None,
            "channel_affinity": [
                ChannelAffinity(identifier_from_raw_id(raw_id), channel)
                for raw_id, channel in options.channel_affinity
            ]
            or None,
            "headers": headers,
        }
        if options.server_call_id is not None:
            with _mapped_errors(call_locator="serverCallId"):
                properties = await self._client.start_recording(
                    server_call_id=options.server_call_id, **settings
                )
        else:
            with _mapped_errors(call_locator="callConnectionId"):
                properties = await self._client.start_recording(
                    call_connection_id=options.call_connection_id or "", **settings
                )
        return _live(properties)

    async def get(self, recording_id: str) -> LiveRecording:
        """:raises AcsError: :class:`AcsNotFoundError` once the recording is over or unknown."""
        with _mapped_errors():
            return _live(await self._client.get_recording_properties(recording_id))

    async def pause(self, recording_id: str) -> None:
        """:raises AcsError: one of its subclasses."""
        with _mapped_errors():
            await self._client.pause_recording(recording_id)

    async def resume(self, recording_id: str) -> None:
        """:raises AcsError: one of its subclasses."""
        with _mapped_errors():
            await self._client.resume_recording(recording_id)

    async def stop(self, recording_id: str) -> None:
        """:raises AcsError: one of its subclasses."""
        with _mapped_errors():
            await self._client.stop_recording(recording_id)

    async def close(self) -> None:
        await self._client.close()
        close_credential = getattr(self._credential, "close", None)
        if close_credential is not None:
            await close_credential()


def _live(properties: Any) -> LiveRecording:
    return LiveRecording(
        recording_id=str(properties.recording_id),
        state=str(properties.recording_state),
        recording_kind=None
        if properties.recording_kind is None
        else str(properties.recording_kind),
    )


@contextmanager
def _mapped_errors(*, call_locator: str | None = None) -> Iterator[None]:
    """Translate azure-core exceptions raised inside the block into :class:`AcsError`."""
    try:
        yield
    except AzureError as error:
        raise _translate(error, call_locator=call_locator) from error


def _translate(error: AzureError, *, call_locator: str | None) -> AcsError:
    if isinstance(error, ClientAuthenticationError):
        return AcsAuthError("ACS refused this app's credential; check its identity and role.")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return AcsUnavailableError(
            "ACS could not be reached.", retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS
        )
    if not isinstance(error, HttpResponseError):
        return AcsUnavailableError(
            "ACS call failed.", retry_after_seconds=DEFAULT_RETRY_AFTER_SECONDS
        )
    return _translate_status(error, call_locator=call_locator)


def _translate_status(error: HttpResponseError, *, call_locator: str | None) -> AcsError:
    status = error.status_code or 0
    code, message = _service_error(error)
    if status == 404:
        what = f"call ({call_locator})" if call_locator else "recording"
        return AcsNotFoundError(f"ACS does not know this {what}.")
    if status in {401, 403}:
        return AcsAuthError(
            "ACS refused this app's credential or permissions; check its identity and role."
        )
    if status in {409, 412}:
        return AcsConflictError(f"ACS refused the operation in the current state ({code}).")
    if status == 429 or status >= 500:
        return AcsUnavailableError(
            f"ACS answered {status} ({code}).", retry_after_seconds=_retry_after(error)
        )
    return AcsRejectedError(f"ACS rejected the request ({code}): {message}")


def _service_error(error: HttpResponseError) -> tuple[str, str]:
    """Code and message from ACS's ``{"error": {"code", "message"}}`` body (never headers)."""
    detail = getattr(error, "error", None)
    code = getattr(detail, "code", None) or "unknown"
    message = getattr(detail, "message", None) or "no message"
    return str(code), str(message)[:300]


def _retry_after(error: HttpResponseError) -> int:
    headers = getattr(error.response, "headers", None) or {}
    raw = headers.get("Retry-After")
    try:
        seconds = int(float(raw)) if raw is not None else DEFAULT_RETRY_AFTER_SECONDS
    except ValueError:
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    return max(1, min(seconds, MAX_RETRY_AFTER_SECONDS))
