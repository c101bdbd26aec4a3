"""A small HTTP server that serves media objects the way ACS does, with faults on demand.

The server is ``local_runtime.media_server``; this runs it as a process of its own::

    python -m scripts.synthetic_media_server --port 8123 \\
        --object /v1/objects/doc/content/audio=1073741824
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from local_runtime.media_server import MediaObject, SyntheticMediaServer


def _object_argument(raw: str) -> tuple[str, int]:
    path, _, size = raw.rpartition("=")
    if not path.startswith("/") or not size.isdigit():
        raise argparse.ArgumentTypeError("expected /path=SIZE_BYTES")
    return path, int(size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--object", type=_object_argument, action="append", default=[], help="/path=SIZE_BYTES"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--objects-json",
        type=Path,
        help='file with [{"path", "size", "seed"} | {"path", "text"}] entries',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = SyntheticMediaServer(args.host, args.port)
    for path, size in args.object:
        server.add(path, MediaObject(size=size, seed=args.seed))
    if args.objects_json:
        server.add_objects(json.loads(args.objects_json.read_text()))
    server.serve_until_signalled()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
