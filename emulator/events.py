"""RecordingFileStatusUpdated events and the two ways Event Grid delivers them.

Storage-queue sink: one message per event, the Event Grid-schema JSON base64-encoded, as Event
Grid writes to a queue today (``--event-queue-encoding json`` writes the plain JSON of earlier
years). Webhook sink: Event Grid's array form, preceded once by the subscription validation
handshake, retried with back-off on failure. Every published event is also kept in memory for
``GET /emulator/events``.

When a fault rule dead-letters an event, it is written where Event Grid writes the events it
gave up on: a blob in the dead-letter container (same storage account as the queue) named
``{TOPIC}/{SUBSCRIPTION}/{year}/{month}/{day}/{hour}/{guid}.json`` (names upper-cased, date and
hour of the dead-lettering in UTC without zero padding, as Microsoft's "Dead letter and retry
policies" page shows), holding a JSON array of the events, each with Event Grid's dead-letter
properties added (``deadLetterReason``, ``deliveryAttempts``, ``lastDeliveryOutcome``,
``lastHttpStatusCode``, ``publishTime``, ``lastDeliveryAttemptTime``). A dropped event goes
nowhere. Both are listed by ``GET /emulator/events`` (``deadLettered``, ``dropped``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable

import aiohttp

from emulator.clock import iso8601
from emulator.constants import EVENT_TYPE_FILE_STATUS, EVENT_TYPE_VALIDATION
from emulator.faults import EVENT_KINDS, FaultInjector
from emulator.models import Call, Recording
from emulator.rendering import RenderedChunk

LOG = logging.getLogger(__name__)
WEBHOOK_ATTEMPTS = 4
DEFAULT_DEAD_LETTER_CONTAINER = "event-deadletter"
#: Second segment of dead-letter blob names: the event subscription (upper-cased by Event Grid).
DEAD_LETTER_SUBSCRIPTION = "RECORDING-FILE-STATUS"
#: What an event dead-lettered after its retries carries (Event Grid's field values).
DEAD_LETTER_DETAILS = {
    "deadLetterReason": "MaxDeliveryAttemptsExceeded",
    "deliveryAttempts": 30,
    "lastDeliveryOutcome": "TimedOut",
    "lastHttpStatusCode": 408,
}


def media_urls(region_host: str, document_id: str, format_type: str) -> dict[str, str]:
    """Locations as ACS writes them: content, metadata and delete URL of one chunk."""
    base = f"https://{region_host}/v1/objects/{document_id}"
    kind = "video" if format_type == "mp4" else "audio"
    return {
        "contentLocation": f"{base}/content/{kind}",
        "metadataLocation": f"{base}/content/acsmetadata",
        "deleteLocation": base,
    }


def file_status_event(
    call: Call,
    recording: Recording,
    chunks: list[RenderedChunk],
    *,
    topic: str,
    region_host: str,
    now: float,
) -> dict:
    options = recording.options
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": (
            f"/recording/call/{call.call_id}/serverCallId/{call.server_call_id}"
            f"/recordingId/{recording.recording_id}"
        ),
        "data": {
            "recordingStorageInfo": {
                "recordingChunks": [
                    {
                        "documentId": chunk.media_object.document_id,
                        "index": chunk.media_object.chunk_index,
                        "endReason": chunk.end_reason,
                        **media_urls(
                            region_host, chunk.media_object.document_id, options.format_type
                        ),
                    }
                    for chunk in chunks
                ]
            },
            "recordingStartTime": iso8601(recording.started_at),
            "recordingDurationMs": sum(chunk.duration_ms for chunk in chunks),
            "sessionEndReason": recording.session_end_reason,
            "recordingContentType": options.content_type,
            "recordingChannelType": options.channel_type,
            "recordingFormatType": options.format_type,
        },
        "eventType": EVENT_TYPE_FILE_STATUS,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": iso8601(now),
    }


class QueueSink:
    def __init__(self, connection_string: str, queue_name: str, encoding: str) -> None:
        self.connection_string = connection_string
        self.queue_name = queue_name
        self.encoding = encoding

    def encode(self, event: dict) -> str:
        text = json.dumps(event)
        if self.encoding == "json":
            return text
        return base64.b64encode(text.encode()).decode()

    def _client(self):
        from azure.storage.queue.aio import QueueClient

        return QueueClient.from_connection_string(self.connection_string, self.queue_name)

    async def ensure_queue(self) -> None:
        """Create the queue if needed, so consumers can poll it before the first event."""
        from azure.core.exceptions import ResourceExistsError

        async with self._client() as client:
            try:
                await client.create_queue()
            except ResourceExistsError:
                LOG.debug("queue %s exists", self.queue_name)

    async def deliver(self, event: dict) -> None:
        await self.ensure_queue()
        async with self._client() as client:
            await client.send_message(self.encode(event))


class DeadLetterSink:
    """Writes dead-lettered events as Event Grid does: one JSON-array blob per dead-lettering."""

    def __init__(self, connection_string: str, container: str, topic: str) -> None:
        self.connection_string = connection_string
        self.container = container
        #: First segment of blob names: the topic's name, upper-cased.
        self.topic_segment = topic.rstrip("/").rsplit("/", 1)[-1].upper()

    def blob_name(self, now: float) -> str:
        moment = time.gmtime(now)
        return (
            f"{self.topic_segment}/{DEAD_LETTER_SUBSCRIPTION}/{moment.tm_year}/{moment.tm_mon}"
            f"/{moment.tm_mday}/{moment.tm_hour}/{uuid.uuid4()}.json"
        )

    @staticmethod
    def content(event: dict, now: float) -> bytes:
        dead = {
            **event,
            **DEAD_LETTER_DETAILS,
            "publishTime": event.get("eventTime") or iso8601(now),
            "lastDeliveryAttemptTime": iso8601(now),
        }
        return json.dumps([dead]).encode()

    async def write(self, event: dict, now: float) -> str:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob.aio import ContainerClient

        name = self.blob_name(now)
        async with ContainerClient.from_connection_string(
            self.connection_string, self.container
        ) as container:
            try:
                await container.create_container()
            except ResourceExistsError:
                LOG.debug("container %s exists", self.container)
            await container.upload_blob(name, self.content(event, now))
        return name


class WebhookSink:
    def __init__(self, url: str, topic: str) -> None:
        self.url = url
        self.topic = topic
        self.validated = False

    async def deliver(self, event: dict) -> None:
        async with aiohttp.ClientSession() as session:
            if not self.validated:
                self.validated = await self._handshake(session)
                if not self.validated:
                    LOG.warning(
                        "webhook %s failed subscription validation; event dropped", self.url
                    )
                    return
            await self._post_with_retries(session, [event])

    async def _handshake(self, session: aiohttp.ClientSession) -> bool:
        code = str(uuid.uuid4())
        validation = {
            "id": str(uuid.uuid4()),
            "topic": self.topic,
            "subject": "",
            "data": {"validationCode": code, "validationUrl": None},
            "eventType": EVENT_TYPE_VALIDATION,
            "eventTime": iso8601(time.time()),
            "metadataVersion": "1",
            "dataVersion": "2",
        }
        headers = {"aeg-event-type": "SubscriptionValidation"}
        try:
            async with session.post(self.url, json=[validation], headers=headers) as response:
                if response.status != 200:
                    return False
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            LOG.warning("webhook validation to %s failed: %s", self.url, exc)
            return False
        return isinstance(answer, dict) and answer.get("validationResponse") == code

    async def _post_with_retries(self, session: aiohttp.ClientSession, events: list[dict]) -> None:
        headers = {"aeg-event-type": "Notification", "aeg-delivery-count": "0"}
        for attempt in range(WEBHOOK_ATTEMPTS):
            headers["aeg-delivery-count"] = str(attempt)
            try:
                async with session.post(self.url, json=events, headers=headers) as response:
                    if 200 <= response.status < 300:
                        return
                    LOG.warning(
                        "webhook %s answered %s (attempt %s)",
                        self.url,
                        response.status,
                        attempt + 1,
                    )
            except aiohttp.ClientError as exc:
                LOG.warning("webhook %s failed (attempt %s): %s", self.url, attempt + 1, exc)
            await asyncio.sleep(0.5 * 2**attempt)


class EventPublisher:
    def __init__(
        self,
        *,
        queue: QueueSink | None,
        webhook: WebhookSink | None,
        delay_seconds: float,
        faults: FaultInjector,
        dead_letter: DeadLetterSink | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.webhook = webhook
        self.delay_seconds = delay_seconds
        self.faults = faults
        self.dead_letter = dead_letter
        self.now = now
        self.published: list[dict] = []
        #: ``{"event", "blob"}`` per dead-lettered event (``blob`` None without a sink).
        self.dead_lettered: list[dict] = []
        self.dropped: list[dict] = []

    async def publish(self, event: dict, *, recording_id: str | None = None) -> None:
        copies = 1
        delay = self.delay_seconds
        fault = self.faults.draw("events", EVENT_KINDS, recording_id=recording_id)
        if fault is not None and fault.kind in ("drop", "deadletter"):
            await self._not_delivered(event, fault.kind)
            return
        if fault is not None and fault.kind == "duplicate":
            copies = 2
        if fault is not None and fault.kind == "delay":
            delay += fault.delay_seconds
        if delay:
            await asyncio.sleep(delay)
        for _ in range(copies):
            await self._deliver(event)
            # Listed only once handed to the sinks: a test that saw it can read the queue.
            self.published.append(event)

    async def _not_delivered(self, event: dict, kind: str) -> None:
        if kind == "drop" or self.dead_letter is None:
            if kind == "deadletter":
                LOG.warning("event %s dropped: no dead-letter container configured", event["id"])
            LOG.info("event %s dropped on purpose (fault rule)", event["id"])
            self.dropped.append(event)
            return
        try:
            blob = await self.dead_letter.write(event, self.now())
        except Exception:  # a broken sink must not stop the emulator
            LOG.exception("writing dead-lettered event %s failed", event["id"])
            blob = None
        LOG.info("event %s dead-lettered on purpose (fault rule) to %s", event["id"], blob)
        self.dead_lettered.append({"event": event, "blob": blob})

    async def prepare(self) -> None:
        if self.queue is not None:
            try:
                await self.queue.ensure_queue()
            except Exception:  # the queue service may start later; delivery retries creation
                LOG.exception("could not create event queue %s", self.queue.queue_name)

    async def _deliver(self, event: dict) -> None:
        for sink in (self.queue, self.webhook):
            if sink is None:
                continue
            try:
                await sink.deliver(event)
            except Exception:  # a broken sink must not stop the other one or the emulator
                LOG.exception("event delivery to %s failed", type(sink).__name__)
