"""Replay poisoned recording events onto the events queue (``operations.replay_poison``).

    python -m scripts.replay_poison --dry-run            # list (first 32) with their reasons
    python -m scripts.replay_poison                      # replay everything
    python -m scripts.replay_poison --reason-contains topic --max 10

Settings come from the Function App's environment variables, checked as the app checks them
(``scripts.operator_settings``: a missing one ends with one message listing them); the tool
uses ``EVENTS_QUEUE`` and the archive storage; ``--connection-string`` overrides the latter.
"""

from __future__ import annotations

import argparse

from recording_pipeline.operations import replay_poison
from scripts.operator_settings import EXIT_SETTINGS, read_settings


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = read_settings("replay_poison")
    if settings is None:
        return EXIT_SETTINGS
    poison, events = replay_poison.queues(settings, args.connection_string)
    if args.dry_run:
        messages = replay_poison.list_poisoned(poison)
        for message in messages:
            print(f"{message.message_id}\t{message.reason}")
        print(
            f"{len(messages)} message(s) shown (at most {replay_poison.PEEK_LIMIT}); "
            "nothing changed"
        )
        return 0
    replayed = replay_poison.replay(
        poison, events, reason_contains=args.reason_contains, limit=args.limit
    )
    for message in replayed:
        print(f"replayed {message.message_id}\t{message.reason}")
    print(f"{len(replayed)} message(s) replayed to {settings.events_queue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
