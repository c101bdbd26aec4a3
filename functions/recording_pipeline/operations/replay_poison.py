"""Put poisoned recording events back on the events queue once the cause is fixed.

Two kinds of message sit in ``<EVENTS_QUEUE>-poison``:

- envelopes the archiver wrote for events it rejected (``{"reason", "messageId", "receivedAt",
  "body"}``, see ``archive.poison``): the original ``body`` is replayed;
- messages the Functions host (or the local worker) moved after ``maxDequeueCount`` failed
  attempts: they are replayed as they are.

Each message is sent to the events queue first and deleted from the poison queue after, so an
interruption can at worst replay a message twice, which the archiver absorbs (a second delivery
of an archived recording is acknowledged without a second archive). The command line is
``python -m scripts.replay_poison``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from azure.storage.queue import QueueClient, QueueMessage

from recording_pipeline.clients import queue_client
from recording_pipeline.settings import Settings

MOVED_BY_HOST = "moved after maxDequeueCount failed attempts"
PEEK_LIMIT = 32


@dataclass(frozen=True)
class PoisonedMessage:
    message_id: str
    reason: str
    body: str


def unwrap(content: str) -> tuple[str, str]:
    """``(reason, body to replay)`` of one poison-queue message."""
    try:
        envelope = json.loads(content)
    except json.JSONDecodeError:
        return MOVED_BY_HOST, content
    if isinstance(envelope, dict) and {"reason", "body"} <= envelope.keys():
        return str(envelope["reason"]), str(envelope["body"])
    return MOVED_BY_HOST, content


def is_truncated(content: str) -> bool:
    """An envelope whose body was cut to fit the queue: replaying it would replay a broken event.

    Such a message stays in the poison queue; its reason and the start of its body tell an
    operator which recording to look up (the registry, or ACS's event history) by hand.
    """
    try:
        envelope = json.loads(content)
    except json.JSONDecodeError:
        return False
    return isinstance(envelope, dict) and bool(envelope.get("bodyTruncated"))


def list_poisoned(poison: QueueClient) -> list[PoisonedMessage]:
    """Peek (the queue service shows at most 32 messages without receiving them)."""
    return [
        PoisonedMessage(message.id, *unwrap(message.content))
        for message in poison.peek_messages(max_messages=PEEK_LIMIT)
    ]


def replay(
    poison: QueueClient,
    events: QueueClient,
    *,
    reason_contains: str | None = None,
    limit: int | None = None,
) -> list[PoisonedMessage]:
    """Move matching messages back to the events queue; returns what was replayed."""
    replayed: list[PoisonedMessage] = []
    skipped: list[QueueMessage] = []
    while limit is None or len(replayed) < limit:
        batch = list(poison.receive_messages(max_messages=PEEK_LIMIT, visibility_timeout=300))
        if not batch:
            break
        for message in batch:
            reason, body = unwrap(message.content)
            if (
                (reason_contains and reason_contains not in reason)
                or (limit is not None and len(replayed) >= limit)
                or is_truncated(message.content)
            ):
                skipped.append(message)
                continue
            events.send_message(body)
            poison.delete_message(message)
            replayed.append(PoisonedMessage(message.id, reason, body))
    for message in skipped:
        # Make the messages we leave behind visible again at once.
        poison.update_message(message, visibility_timeout=0)
    return replayed


def queues(settings: Settings, connection_string: str | None) -> tuple[QueueClient, QueueClient]:
    """``(poison queue, events queue)``, through ``connection_string`` when one is given."""
    if connection_string:
        return (
            QueueClient.from_connection_string(connection_string, settings.poison_queue),
            QueueClient.from_connection_string(connection_string, settings.events_queue),
        )
    return queue_client(settings, settings.poison_queue), queue_client(
        settings, settings.events_queue
    )
