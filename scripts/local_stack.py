"""The local stack, and what runs on it (``local_runtime.stack``, ``local_runtime.demo``).

python -m scripts.local_stack demo   # `make local`: start, run the demo, stop everything
python -m scripts.local_stack up     # `make up`: start and keep running until Ctrl-C
python -m scripts.local_stack up --api-auth entraId   # `make up API_AUTH=entraId`

Without ``--state-dir`` the stack lives in a new temp dir: after a clean stop its data is
deleted and its logs are kept; after a failure everything is kept. Ctrl-C (or SIGTERM) is the
normal way to stop ``up``: it exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from local_runtime.demo import run_demo
from local_runtime.processes import ServiceStartError
from local_runtime.stack import (
    API_AUTH_MODES,
    discard_data_keep_logs,
    print_endpoints,
    remove_env_file,
    run_supervised,
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
        "--state-dir",
        type=Path,
        help="keep data and logs here, and leave them there (default: a new temp dir, whose "
        "logs are kept)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        help="up: write `export NAME=value` lines for a shell to `source` here (mode 0600): the "
        "CLI's variables and the API's settings; removed when the stack stops",
    )
    parser.add_argument(
        "--api-auth",
        choices=API_AUTH_MODES,
        default="functionKey",
        help="up: who may call the API, as the stack key apiAuth: functionKey (default), entraId "
        "(tokens of a local issuer; the CLI signs in with azure-identity) or both",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mode == "demo" and args.api_auth != "functionKey":
        parser.error("--api-auth applies to up; the demo runs with the function key")
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="acsrec-"))
    started = time.monotonic()
    print("Starting Azurite, the ACS emulator, the API and the archive worker on 127.0.0.1 ...")
    code = 1
    try:
        code = _run(args, state_dir, started)
    except KeyboardInterrupt:
        print("\nStopped.")
        code = 0
    except ServiceStartError as error:
        print(f"The local stack could not start: {error}", file=sys.stderr)
    finally:
        _leave_state(state_dir, temporary=args.state_dir is None, failed=code != 0)
    return code


def _run(args: argparse.Namespace, state_dir: Path, started: float) -> int:
    # The demo runs on the emulator's manual clock: minutes of call in well under a minute.
    emulator_args = ("--clock", "manual") if args.mode == "demo" else ("--clock", "wall")
    with running_stack(state_dir, emulator_args=emulator_args, api_auth=args.api_auth) as stack:
        print(f"Ready in {time.monotonic() - started:.1f}s.")
        if args.mode == "demo":
            print_endpoints(stack, exports=False)
            return run_demo(api_url=stack.api_url, function_key=stack.function_key, stack=stack)
        if args.env_file:
            write_env_file(stack, args.env_file)
        try:
            print_endpoints(stack, args.env_file)
            return run_supervised(stack)
        finally:
            if args.env_file:
                remove_env_file(stack, args.env_file)


def _leave_state(state_dir: Path, *, temporary: bool, failed: bool) -> None:
    """A dir the user chose is theirs; a temp dir keeps its logs, and everything on failure."""
    if not state_dir.exists():
        return
    if failed or not temporary:
        print(f"State and logs kept in {state_dir}", file=sys.stderr if failed else sys.stdout)
        return
    discard_data_keep_logs(state_dir)
    print(f"Logs kept in {state_dir / 'logs'}")


if __name__ == "__main__":
    sys.exit(main())
