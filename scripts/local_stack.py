"""The local stack, and what runs on it (``local_runtime.stack``, ``local_runtime.demo``).

python -m scripts.local_stack demo   # `make local`: start, run the demo, stop everything
python -m scripts.local_stack up     # `make up`: start and keep running until Ctrl-C
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from local_runtime.demo import run_demo
from local_runtime.stack import (
    print_endpoints,
    run_until_a_service_stops,
    running_stack,
    write_env_file,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_stack",
        description="The whole pipeline on one machine: Azurite, the ACS emulator, the API and "
        "the archive worker.",
    )
    parser.add_argument(
        "mode", choices=["demo", "up"], help="demo: run the demo and stop; up: keep running"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep data and logs here (default: a temp dir)"
    )
    parser.add_argument(
        "--env-file", type=Path, help="up: also write the API settings as JSON here (mode 0600)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    print("Starting Azurite, the ACS emulator, the API and the archive worker on 127.0.0.1 ...")
    try:
        # The demo runs on the emulator's manual clock: minutes of call in well under a minute.
        emulator_args = ("--clock", "manual") if args.mode == "demo" else ("--clock", "wall")
        with running_stack(args.state_dir, emulator_args=emulator_args) as stack:
            print(f"Ready in {time.monotonic() - started:.1f}s:")
            print_endpoints(stack)
            if args.mode == "up":
                if args.env_file:
                    write_env_file(stack, args.env_file)
                return run_until_a_service_stops(stack)
            return run_demo(api_url=stack.api_url, function_key=stack.function_key, stack=stack)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
