"""The archiver on this machine with the Functions queue trigger's semantics, against Azurite.

The Functions host cannot be installed here, so this worker plays its part for the queue
trigger, using the values of ``functions/host.json`` so both behave alike:

- a received message stays invisible while it is processed (its lease is renewed);
- success deletes it; a failure makes it visible again after ``visibilityTimeout``;
- the attempt that reaches ``maxDequeueCount`` and fails moves it, as it is, to
  ``<queue>-poison`` (so does receiving a message already past the limit, e.g. after crashes);
- up to ``batchSize`` messages are processed at once; an empty queue is polled with a growing
  pause capped at ``maxPollingInterval``.

It calls the same ``recording_pipeline.archive.archiver.handle_event_message`` as the Function App.
SIGTERM/SIGINT stop polling and let the messages in progress finish; a SIGKILL leaves them
invisible until their lease ends, and they are then redelivered, like after a host crash.

Settings come from the same environment variables as the Function App; the queue connection is
``RecordingQueue`` (a connection string locally) or ``ARCHIVE_STORAGE_CONNECTION_STRING``. The
command line is ``python -m scripts.archive_worker``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage

from recording_pipeline.archive.archiver import handle_event_message
from recording_pipeline.archive.host_json import QueueHostOptions
from recording_pipeline.clients import (
    recordings_container_client,
    registry_table_client,
)
from recording_pipeline.settings import Settings, SettingsError, check_storage_connection_string

LOGGER = logging.getLogger("archive_worker")
#: Exit code when the settings or the queue connection are missing or malformed (one log line).
EXIT_SETTINGS = 2
MessageHandler = Callable[..., Any]


class LeaseRenewer:
    """Keeps one message invisible while it is processed, tracking its latest pop receipt."""

    def __init__(self, queue: QueueClient, message: QueueMessage, lease_seconds: int) -> None:
        self._queue = queue
        self._message_id = message.id
        self.pop_receipt: str | None = message.pop_receipt
        self._lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"lease-{message.id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(max(1.0, self._lease_seconds / 3)):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    self.update(self._lease_seconds)
                except HttpResponseError as error:
                    # Another delivery may now start; the archiver tolerates a duplicate.
                    LOGGER.warning("lease of message %s not renewed: %s", self._message_id, error)
                    return

    def update(self, visibility_timeout: int) -> None:
        updated = self._queue.update_message(
            self._message_id, pop_receipt=self.pop_receipt, visibility_timeout=visibility_timeout
        )
        self.pop_receipt = updated.pop_receipt

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        self._thread.join(5)


class ArchiveWorker:
    """Polls the events queue and hands each message to the archiver."""

    def __init__(
        self,
        settings: Settings,
        events: QueueClient,
        poison: QueueClient,
        options: QueueHostOptions,
        *,
        lease_seconds: int = 60,
        handler: MessageHandler = handle_event_message,
    ) -> None:
        self.settings = settings
        self.events = events
        self.poison = poison
        self.options = options
        self.lease_seconds = lease_seconds
        self.handler = handler

    def run(self, stop: threading.Event, *, exit_when_idle: float | None = None) -> int:
        """Process messages until ``stop`` is set (or the queue stayed empty that long)."""
        processed = 0
        pause = 0.05
        idle_since = time.monotonic()
        slots = threading.Semaphore(self.options.batch_size)
        with ThreadPoolExecutor(self.options.batch_size, thread_name_prefix="archive") as pool:
            while not stop.is_set():
                free = _acquire_all(slots, self.options.batch_size)
                messages = self._receive(free) if free else []
                for _ in range(free - len(messages)):
                    slots.release()
                for message in messages:
                    pool.submit(self._process_and_release, message, slots)
                processed += len(messages)
                if messages:
                    pause, idle_since = 0.05, time.monotonic()
                    continue
                idle = time.monotonic() - idle_since
                if (
                    exit_when_idle is not None
                    and idle >= exit_when_idle
                    and free == self.options.batch_size
                ):
                    break
                stop.wait(pause)
                pause = min(pause * 2, self.options.max_polling_interval_seconds)
        return processed

    def _receive(self, count: int) -> list[QueueMessage]:
        pages = self.events.receive_messages(
            messages_per_page=count, visibility_timeout=self.lease_seconds, max_messages=count
        )
        return list(pages)

    def _process_and_release(self, message: QueueMessage, slots: threading.Semaphore) -> None:
        try:
            self.process(message)
        finally:
            slots.release()

    def process(self, message: QueueMessage) -> None:
        if _attempt(message) > self.options.max_dequeue_count:
            self._move_to_poison(message, message.pop_receipt)
            return
        lease = LeaseRenewer(self.events, message, self.lease_seconds)
        try:
            outcome = self.handler(
                message.content,
                dequeue_count=_attempt(message),
                message_id=message.id,
                settings=self.settings,
            )
        except Exception:
            # The worker is the host boundary: record the failure, keep the message for retry.
            LOGGER.exception("message %s failed on attempt %d", message.id, _attempt(message))
            lease.stop()
            self._after_failure(message, lease)
            return
        lease.stop()
        self.events.delete_message(message.id, lease.pop_receipt)
        LOGGER.info("message %s done: %s", message.id, outcome)

    def _after_failure(self, message: QueueMessage, lease: LeaseRenewer) -> None:
        if _attempt(message) >= self.options.max_dequeue_count:
            self._move_to_poison(message, lease.pop_receipt)
            return
        lease.update(int(self.options.visibility_timeout_seconds))

    def _move_to_poison(self, message: QueueMessage, pop_receipt: str | None) -> None:
        LOGGER.error(
            "message %s moved to %s after %d attempts",
            message.id,
            self.settings.poison_queue,
            _attempt(message),
        )
        self.poison.send_message(message.content)
        self.events.delete_message(message.id, pop_receipt)


def _attempt(message: QueueMessage) -> int:
    """The service counts deliveries from 1; the SDK types the count as optional."""
    return message.dequeue_count or 1


def _acquire_all(slots: threading.Semaphore, limit: int) -> int:
    free = 0
    while free < limit and slots.acquire(blocking=False):
        free += 1
    return free


def ensure_local_resources(settings: Settings, events: QueueClient, poison: QueueClient) -> None:
    """Locally nothing provisions Azurite, so the worker creates what the archive needs."""
    for create in (
        events.create_queue,
        poison.create_queue,
        recordings_container_client(settings).create_container,
        registry_table_client(settings).create_table,
    ):
        with contextlib.suppress(ResourceExistsError):
            create()


class WorkerSettingsError(ValueError):
    """The worker cannot start with these settings; the message says which and why."""


def _queue_connection_string(explicit: str | None) -> str:
    candidates = (
        ("--connection-string", explicit),
        ("RecordingQueue", os.environ.get("RecordingQueue")),  # noqa: SIM112 - Functions' name
        ("ARCHIVE_STORAGE_CONNECTION_STRING", os.environ.get("ARCHIVE_STORAGE_CONNECTION_STRING")),
    )
    for source, value in candidates:
        if value:
            try:
                check_storage_connection_string(value)
            except ValueError as error:
                raise WorkerSettingsError(f"{source} {error}") from None
            return value
    raise WorkerSettingsError(
        "set RecordingQueue or ARCHIVE_STORAGE_CONNECTION_STRING (or --connection-string)"
    )


def serve(
    options: QueueHostOptions,
    *,
    connection_string: str | None = None,
    lease_seconds: int = 60,
    exit_when_idle: float | None = None,
) -> int:
    """Poll the events queue until SIGTERM or SIGINT (or until idle that long); 0 when stopped,
    :data:`EXIT_SETTINGS` (with one log line) when the settings do not allow a start.

    :param connection_string: the queue connection; default ``RecordingQueue`` or
        ``ARCHIVE_STORAGE_CONNECTION_STRING`` from the environment.
    """
    try:
        settings = Settings.from_env()
        connection = _queue_connection_string(connection_string)
    except (SettingsError, WorkerSettingsError) as error:
        LOGGER.error("archive worker cannot start: %s", error)
        return EXIT_SETTINGS
    events = QueueClient.from_connection_string(connection, settings.events_queue)
    poison = QueueClient.from_connection_string(connection, settings.poison_queue)
    ensure_local_resources(settings, events, poison)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    LOGGER.info("archive worker polling %s (%s)", settings.events_queue, options)
    worker = ArchiveWorker(settings, events, poison, options, lease_seconds=lease_seconds)
    processed = worker.run(stop, exit_when_idle=exit_when_idle)
    LOGGER.info("archive worker stopped after %d messages", processed)
    return 0
