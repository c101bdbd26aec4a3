"""The local archive worker: the queue trigger's code with the Functions host's semantics
(``local_runtime.archive_worker``), started by ``make local`` and the tests."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from local_runtime.archive_worker import serve
from recording_pipeline.archive.host_json import HOST_JSON, QueueHostOptions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.archive_worker",
        description="Archive recordings from the events queue with the Functions host's "
        "queue semantics (local stack, tests, benchmarks).",
    )
    parser.add_argument("--connection-string", help="queue connection (default: env)")
    parser.add_argument("--host-json", type=Path, default=HOST_JSON)
    parser.add_argument(
        "--lease-seconds", type=int, default=60, help="invisibility while a message is processed"
    )
    parser.add_argument("--visibility-timeout", type=float, help="override host.json")
    parser.add_argument("--max-polling-interval", type=float, help="override host.json")
    parser.add_argument("--batch-size", type=int, help="override host.json")
    parser.add_argument(
        "--exit-when-idle", type=float, help="exit once the queue stayed empty this many seconds"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    overrides = {
        "visibility_timeout_seconds": args.visibility_timeout,
        "max_polling_interval_seconds": args.max_polling_interval,
        "batch_size": args.batch_size,
    }
    options = replace(
        QueueHostOptions.from_host_json(args.host_json),
        **{k: v for k, v in overrides.items() if v is not None},
    )
    return serve(
        options,
        connection_string=args.connection_string,
        lease_seconds=args.lease_seconds,
        exit_when_idle=args.exit_when_idle,
    )


if __name__ == "__main__":
    raise SystemExit(main())
