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


def is_replayed(content: str, reason: str, reason_contains: str | None) -> bool:
    """The one rule of which messages a replay moves; the dry run applies it too."""
    if is_truncated(content):
        return False
    return not reason_contains or reason_contains in reason


def plan(
    poison: QueueClient, *, reason_contains: str | None = None, limit: int | None = None
) -> list[PoisonedMessage]:
    """What :func:`replay` with the same filters would move, changing nothing.

    It peeks, and the queue service shows at most :data:`PEEK_LIMIT` messages that way (receiving
    more would hide them and count a dequeue): with more in the queue, a real run goes further.
    """
    chosen = []
    for message in poison.peek_messages(max_messages=PEEK_LIMIT):
        reason, body = unwrap(message.content)
        if is_replayed(message.content, reason, reason_contains):
            chosen.append(PoisonedMessage(message.id, reason, body))
    return chosen if limit is None else chosen[:limit]


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
            if not is_replayed(message.content, reason, reason_contains) or (
                limit is not None and len(replayed) >= limit
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


def queues(settings: Settings) -> tuple[QueueClient, QueueClient]:
    """``(poison queue, events queue)`` of the archive storage the settings name."""
    return queue_client(settings, settings.poison_queue), queue_client(
        settings, settings.events_queue
    )
