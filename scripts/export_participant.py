"""List, export or erase one participant's archived recordings (``operations.participants``).

    python -m scripts.export_participant list   --participant-id "8:acs:..."
    python -m scripts.export_participant export --participant-id "8:acs:..." --out ./export
    python -m scripts.export_participant erase  --participant-id "8:acs:..." --yes

Settings come from the Function App's environment variables, checked as the app checks them
(``scripts.operator_settings``); the tool uses the archive storage, container and table;
``--connection-string`` overrides the storage, as for the other operator tools.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recording_pipeline.clients import recordings_container_client, registry_table_client
from recording_pipeline.events_out.announce import recording_events
from recording_pipeline.operations import participants
from recordings_cli.closed_stdout import run_until_reader_gone
from scripts.operator_settings import EXIT_SETTINGS, add_connection_string_option, read_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.export_participant",
        description="List, export or erase the archived recordings of one participant.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("list", "print the participant's recordings as JSON"),
        ("export", "download and verify every file of those recordings"),
        ("erase", "delete those recordings (for every participant of them)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--participant-id", required=True, help='e.g. "8:acs:<guid>"')
        if name == "export":
            command.add_argument("--out", type=Path, required=True, help="output directory")
        if name == "erase":
            command.add_argument("--yes", action="store_true", help="confirm the deletion")
        add_connection_string_option(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "erase" and not args.yes:
        parser.error("erase deletes recordings for every participant in them: add --yes")
    settings = read_settings("export_participant", args.connection_string)
    if settings is None:
        return EXIT_SETTINGS
    container = recordings_container_client(settings)
    table = registry_table_client(settings)
    rows = participants.participant_recordings(table, args.participant_id)
    if args.command == "list":
        print(json.dumps(participants.index_listing(rows), indent=2))
    elif args.command == "export":
        summary = participants.export_recordings(container, rows, args.out, args.participant_id)
        print(f"exported {len(summary['recordings'])} recording(s) to {args.out}")
    else:
        events = recording_events(settings, table, container)
        erased = participants.erase_recordings(container, table, rows, events)
        print(f"erased {len(erased)} recording(s)")
        if erased and not events.enabled:
            print(
                "RECORDING_EVENTS_TOPIC_ENDPOINT is not set here: the reconciler publishes "
                "their RecordingErased events (if this deployment publishes events)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_until_reader_gone(main))
