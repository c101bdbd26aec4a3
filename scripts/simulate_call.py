"""A simulated call on the local ACS emulator, for trying the API by hand (``make up``).

    .venv/bin/python -m scripts.simulate_call create            # prints the new serverCallId
    .venv/bin/python -m scripts.simulate_call create --participant 8:acs:alice --participant 4:+1555
    .venv/bin/python -m scripts.simulate_call hangup SERVER_CALL_ID

The emulator's URL comes from ``--emulator-url`` or ``ACS_EMULATOR_URL`` (``make up`` prints it
and writes it to its env file). In Azure, calls come from your application, not from here.
Exit codes: 0 done; 2 usage error; 3 the emulator could not be reached or refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error

from emulator.simulation import EmulatorSimulation, SimulationError

#: Each participant speaks a tone of its own, so a recording's channels can be told apart.
DEFAULT_PARTICIPANTS = (
    {"rawId": "8:acs:00000000-0000-4000-8000-00000000a11c_alice", "toneHz": 440},
    {"rawId": "8:acs:00000000-0000-4000-8000-0000000000b0_bob", "toneHz": 660},
    {"rawId": "4:+15550100123", "toneHz": 990},
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.simulate_call",
        description="Create or hang up a simulated call on the local ACS emulator.",
    )
    parser.add_argument(
        "--emulator-url",
        default=os.environ.get("ACS_EMULATOR_URL"),
        help="the emulator's base URL (default: $ACS_EMULATOR_URL, which `make up` sets)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="start a call; prints its serverCallId")
    create.add_argument(
        "--participant",
        action="append",
        metavar="RAW_ID",
        help="a participant's raw id (repeatable; default: three, each with its own tone)",
    )
    create.add_argument("--json", action="store_true", help="print the emulator's whole answer")
    hangup = commands.add_parser("hangup", help="end a call (ACS stops its recording)")
    hangup.add_argument("server_call_id", metavar="SERVER_CALL_ID")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.emulator_url:
        parser.error("no emulator URL: pass --emulator-url or set ACS_EMULATOR_URL")
    simulation = EmulatorSimulation(args.emulator_url, timeout=10)
    try:
        if args.command == "create":
            call = simulation.create_call(args.participant or list(DEFAULT_PARTICIPANTS))
            print(json.dumps(call, indent=2) if args.json else call["serverCallId"])
        else:
            simulation.hangup(args.server_call_id)
            print(f"call {args.server_call_id} hung up")
    except SimulationError as error:
        print(f"simulate_call: error: {error}", file=sys.stderr)
        return 3
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        print(
            f"simulate_call: error: cannot reach the emulator at {args.emulator_url} ({reason}); "
            "is `make up` running?",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
