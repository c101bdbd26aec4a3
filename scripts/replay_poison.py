"""Replay poisoned recording events onto the events queue (``operations.replay_poison``).

    python -m scripts.replay_poison --dry-run            # what a replay would move; no change
    python -m scripts.replay_poison                      # replay everything
    python -m scripts.replay_poison --reason-contains topic --max 10

``--dry-run`` takes the same filters and prints what the same command without it would replay
(from the first 32 messages: the most the queue service shows without receiving them).
Settings come from the Function App's environment variables, checked as the app checks them
(``scripts.operator_settings``: a missing one ends with one message listing them); the tool
uses ``EVENTS_QUEUE`` and the archive storage; ``--connection-string`` overrides the latter.
"""

from __future__ import annotations

import argparse

from recording_pipeline.operations import replay_poison
from recordings_cli.closed_stdout import run_until_reader_gone
from scripts.operator_settings import EXIT_SETTINGS, add_connection_string_option, read_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.replay_poison",
        description="Replay poisoned recording events onto the events queue.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the same command would replay (of the first 32); change nothing",
    )
    parser.add_argument("--reason-contains", help="only messages whose reason contains this")
    parser.add_argument(
        "--max", type=_at_least_one, dest="limit", metavar="N", help="replay at most N"
    )
    add_connection_string_option(parser)
    return parser


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = read_settings("replay_poison", args.connection_string)
    if settings is None:
        return EXIT_SETTINGS
    poison, events = replay_poison.queues(settings)
    filters = {"reason_contains": args.reason_contains, "limit": args.limit}
    if args.dry_run:
        planned = replay_poison.plan(poison, **filters)
        for message in planned:
            print(f"would replay {message.message_id}\t{message.reason}")
        print(
            f"{len(planned)} message(s) would be replayed to {settings.events_queue} (of the "
            f"first {replay_poison.PEEK_LIMIT} in {settings.poison_queue}); nothing changed"
        )
        return 0
    replayed = replay_poison.replay(poison, events, **filters)
    for message in replayed:
        print(f"replayed {message.message_id}\t{message.reason}")
    print(f"{len(replayed)} message(s) replayed to {settings.events_queue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_until_reader_gone(main))
