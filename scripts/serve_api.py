"""Serve the recording API on this machine: ``python -m scripts.serve_api [--host] [--port]``.

The same ASGI app Azure Functions runs, under uvicorn, configured by the same environment
variables as the Function App (see ``functions/recording_pipeline/settings.py``), pointed at the
emulator and Azurite. Because nothing in front of uvicorn checks function keys, the app checks
``x-functions-key`` against ``LOCAL_FUNCTION_KEY`` itself. Bad settings stop it before it
listens, with one message that lists every problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
DEFAULT_PORT = 7071  # the Functions host's local port, so clients need no change


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.serve_api",
        description="Serve the recording API locally (settings from the environment).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default 7071)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; 2 when the settings are invalid."""
    args = build_parser().parse_args(argv)
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))
    import uvicorn

    from recording_pipeline.api import create_app
    from recording_pipeline.settings import SettingsError

    try:
        app = create_app()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
