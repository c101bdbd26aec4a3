"""Serve the recording API locally under uvicorn (``local_runtime.api_server``).

python -m scripts.serve_api --host 127.0.0.1 --port 7071
"""

from __future__ import annotations

import argparse
import sys

from local_runtime.api_server import DEFAULT_PORT, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.serve_api",
        description="Serve the recording API locally (settings from the environment).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default 7071)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument(
        "--http",
        choices=("auto", "httptools", "h11"),
        default="auto",
        help="HTTP parser (default: httptools when installed, else h11)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop (default: uvloop when installed, else asyncio)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; 2 when the settings are invalid."""
    args = build_parser().parse_args(argv)
    return serve(
        host=args.host, port=args.port, log_level=args.log_level, http=args.http, loop=args.loop
    )


if __name__ == "__main__":
    sys.exit(main())
