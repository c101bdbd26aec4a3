"""EmulatorService: builds and owns the parts (store, clock, provider, calls, sinks, faults, the
Event Grid custom topic).

The HTTP layer only talks to this object; tests and ``/emulator/reset`` reset it as a whole.
Stopping a recording hands a frozen copy of the call and recording to a worker thread that
renders the media, then registers the chunks and publishes the event.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from emulator.callbacks import CallbackSender, CallbackSigner, recording_state_changed
from emulator.calls import CallSimulator
from emulator.clock import ManualClock, make_clock
from emulator.config import EmulatorConfig
from emulator.events import (
    DeadLetterSink,
    EventPublisher,
    QueueSink,
    WebhookSink,
    file_status_event,
)
from emulator.faults import FaultInjector, parse_rule
from emulator.ids import IdFactory
from emulator.models import Recording
from emulator.provider import CallRecordingProvider
from emulator.rendering import RenderSettings, render_recording
from emulator.store import RecordingStore
from emulator.topic import EventGridTopicProvider

LOG = logging.getLogger(__name__)
# Renders are CPU-bound; two at a time keeps the event loop responsive on a 2-core machine.
RENDER_CONCURRENCY = 2


class EmulatorService:
    def __init__(self, config: EmulatorConfig, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.clock = make_clock(config.clock)
        self.store = RecordingStore(config.data_dir)
        self.ids = IdFactory(recording_id_suffix=config.recording_id_suffix)
        self.faults = FaultInjector(
            config.fault_seed,
            [parse_rule(item, f"--faults[{i}]") for i, item in enumerate(config.faults)],
        )
        self.provider = CallRecordingProvider(
            self.store,
            self.clock,
            self.ids,
            on_state_changed=self._state_changed,
            on_stopped=self._schedule_render,
        )
        self.calls = CallSimulator(self.store, self.clock, self.ids, self.provider)
        self.signer = CallbackSigner(issuer=base_url, audience=config.immutable_resource_id)
        self.callbacks = CallbackSender(self.signer)
        self.events = EventPublisher(
            queue=_queue_sink(config),
            webhook=WebhookSink(config.event_webhook, config.resource_id)
            if config.event_webhook
            else None,
            delay_seconds=config.event_delay_seconds,
            faults=self.faults,
            dead_letter=_dead_letter_sink(config),
            now=self.clock.now,
        )
        #: The Event Grid custom topic the pipeline publishes its own events to (``--topic-key``).
        self.topic = (
            EventGridTopicProvider(config.topic_key, self.clock.now) if config.topic_key else None
        )
        self._tasks: set[asyncio.Task] = set()
        self._render_slots = asyncio.Semaphore(RENDER_CONCURRENCY)

    @property
    def manual_clock(self) -> ManualClock | None:
        return self.clock if isinstance(self.clock, ManualClock) else None

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.store.reset()
        self.events.published.clear()
        self.events.dead_lettered.clear()
        self.events.dropped.clear()
        self.callbacks.sent.clear()
        if self.topic is not None:
            self.topic.reset()
        self.faults.configure(self.config.fault_seed, [])

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _state_changed(self, recording: Recording) -> None:
        uri = recording.options.callback_uri
        if not uri:
            return
        call = self.store.calls[recording.server_call_id]
        event = recording_state_changed(call, recording, source=self.base_url, now=self.clock.now())
        self._spawn(self.callbacks.send(uri, event))

    def _schedule_render(self, recording: Recording) -> None:
        self._spawn(self._render_and_publish(recording))

    async def _render_and_publish(self, recording: Recording) -> None:
        call = copy.deepcopy(self.store.calls[recording.server_call_id])
        frozen = copy.deepcopy(recording)
        settings = RenderSettings(
            max_chunk_seconds=self.config.max_chunk_seconds,
            retention_seconds=self.config.retention_seconds,
            immutable_resource_id=self.config.immutable_resource_id,
        )
        async with self._render_slots:
            try:
                chunks = await asyncio.to_thread(
                    render_recording,
                    call,
                    frozen,
                    self.store.objects_dir,
                    settings,
                    self.ids,
                    self.clock.now(),
                )
            except Exception:  # a render bug must be visible, not kill the event loop
                LOG.exception("rendering recording %s failed", recording.recording_id)
                recording.render_status = "failed"
                return
        for chunk in chunks:
            self.store.add_object(chunk.media_object)
        recording.document_ids = [chunk.media_object.document_id for chunk in chunks]
        recording.render_status = "ready"
        event = file_status_event(
            call,
            recording,
            chunks,
            topic=self.config.resource_id,
            region_host=self.config.region_host,
            now=self.clock.now(),
        )
        await self.events.publish(event, recording_id=recording.recording_id)

    def objects_report(self) -> dict:
        self.provider.expire_objects()
        now = self.clock.now()
        return {
            "objects": [
                {
                    "documentId": o.document_id,
                    "recordingId": o.recording_id,
                    "chunkIndex": o.chunk_index,
                    "mediaType": o.media_type,
                    "status": o.status(now),
                    "createdAt": o.created_at,
                    "expiresAt": o.expires_at,
                    "deletedAt": o.deleted_at,
                    "contentBytes": o.content_path.stat().st_size
                    if o.content_path.exists()
                    else None,
                }
                for o in self.store.objects.values()
            ],
            "recordings": [
                {
                    "recordingId": r.recording_id,
                    "serverCallId": r.server_call_id,
                    "state": "stopped" if r.stopped else r.state,
                    "renderStatus": r.render_status,
                    "documentIds": r.document_ids,
                }
                for r in self.store.recordings.values()
            ],
        }


def _queue_sink(config: EmulatorConfig) -> QueueSink | None:
    if not (config.event_queue_connection_string and config.event_queue_name):
        return None
    return QueueSink(
        config.event_queue_connection_string, config.event_queue_name, config.event_queue_encoding
    )


def _dead_letter_sink(config: EmulatorConfig) -> DeadLetterSink | None:
    """Dead letters go to a container of the queue's storage account, as in Azure."""
    if not (config.event_queue_connection_string and config.dead_letter_container):
        return None
    return DeadLetterSink(
        config.event_queue_connection_string, config.dead_letter_container, config.resource_id
    )
