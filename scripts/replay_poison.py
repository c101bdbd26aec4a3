"""Put poisoned recording events back on the events queue once the cause is fixed.

Two kinds of message sit in ``<EVENTS_QUEUE>-poison``:

- envelopes the archiver wrote for events it rejected (``{"reason", "messageId", "receivedAt",
  "body"}``): the original ``body`` is replayed;
- messages the Functions host (or the local worker) moved after ``maxDequeueCount`` failed
  attempts: they are replayed as they are.

Each message is sent to the events queue first and deleted from the poison queue after, so an
interruption can at worst replay a message twice, which the archiver absorbs (a second delivery
of an archived recording is acknowledged without a second archive).

    python -m scripts.replay_poison --dry-run            # list (first 32) with their reasons
    python -m scripts.replay_poison                      # replay everything
    python -m scripts.replay_poison --reason-contains topic --max 10

Settings come from the Function App's environment variables (``EVENTS_QUEUE`` and the archive
storage connection); ``--connection-string`` overrides the storage connection.
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.replay_poison",
        description="Replay poisoned recording events onto the events queue.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, change nothing")
    parser.add_argument("--reason-contains", help="only messages whose reason contains this")
    parser.add_argument("--max", type=int, dest="limit", help="replay at most this many")
    parser.add_argument("--connection-string", help="archive storage connection string")
    return parser


def _queues(settings: Settings, connection: str | None) -> tuple[QueueClient, QueueClient]:
    if connection:
        return (
            QueueClient.from_connection_string(connection, settings.poison_queue),
            QueueClient.from_connection_string(connection, settings.events_queue),
        )
    return queue_client(settings, settings.poison_queue), queue_client(
        settings, settings.events_queue
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    poison, events = _queues(settings, args.connection_string)
    if args.dry_run:
        messages = list_poisoned(poison)
        for message in messages:
            print(f"{message.message_id}\t{message.reason}")
        print(f"{len(messages)} message(s) shown (at most {PEEK_LIMIT}); nothing changed")
        return 0
    replayed = replay(poison, events, reason_contains=args.reason_contains, limit=args.limit)
    for message in replayed:
        print(f"replayed {message.message_id}\t{message.reason}")
    print(f"{len(replayed)} message(s) replayed to {settings.events_queue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
