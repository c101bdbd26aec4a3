"""Run the reconciler once, as the timer function does (``recording_pipeline.reconcile``).

    python -m scripts.reconcile                  # one run; exit 1 when a person is needed
    python -m scripts.reconcile --dry-run        # what a run would do; nothing changes
    python -m scripts.reconcile --json           # the full report as JSON
    python -m scripts.reconcile --every 60       # the local stack's timer: a run every minute

``--every`` keeps the other options: with ``--dry-run`` every run changes nothing, with
``--json`` each run's report is printed as one line of JSON, and ``--sweep`` forces the sweep on
the first run (later runs sweep when it is due, as the timer does).

Settings come from the Function App's environment variables (the same names; in Azure the
storage and ACS calls use your own sign-in), ``--connection-string`` points the storage calls at
another account (Azurite's connection string for the local stack).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging

from recording_pipeline.clock import utc_now
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import ReconcileReport
from recording_pipeline.reconcile.run import ReconcileClients, log_summary, run
from recording_pipeline.settings import Settings
from recordings_cli.closed_stdout import run_until_reader_gone
from scripts.operator_settings import add_connection_string_option, read_settings

#: Exit codes: done; done, and something needs a person; bad usage or settings.
OK, NEEDS_PERSON, USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.reconcile",
        description="Recover dead-lettered and outage-poisoned recording events, mark overdue "
        "and lost recordings, retry ACS deletions. Exit 1 when a person is needed.",
    )
    parser.add_argument("--dry-run", action="store_true", help="decide and report, change nothing")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--sweep", action="store_true", help="run the index sweep now, even if it is not due"
    )
    add_connection_string_option(parser)
    parser.add_argument(
        "--every", type=float, metavar="SECONDS", help="keep running, a run every SECONDS"
    )
    return parser


def print_report(report: ReconcileReport) -> None:
    """What happened to which recording, one line each, then the summary line."""
    details = report.to_json()
    for section in ("deadLetters", "poison", "sweep", "overdue", "acsDeletes"):
        for outcome, items in details[section].items():
            if not isinstance(items, list):
                continue
            for item in items:
                subject = item.get("recordingId") or item.get("blob") or item.get("messageId")
                extra = item.get("error") or item.get("problem") or item.get("reason") or ""
                print(f"  {section} {outcome}: {subject}" + (f" ({extra})" if extra else ""))
    for error in report.errors:
        print(f"  error: {error}")
    print(report.summary())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A person sees the report and the warnings; the loop's log keeps each run's summary.
    level = logging.INFO if args.every is not None else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    settings = read_settings("reconcile", args.connection_string)
    if settings is None:
        return USAGE
    if args.every is not None:
        from local_runtime.reconciler import serve

        return serve(functools.partial(_loop_run, args, settings), args.every)
    report = _run(args, settings, force_sweep=args.sweep)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_report(report)
    return NEEDS_PERSON if report.needs_person else OK


def _run(args: argparse.Namespace, settings: Settings, *, force_sweep: bool) -> ReconcileReport:
    return run(
        ReconcileClients.from_settings(settings),
        ReconcilePolicy.from_settings(settings),
        now=utc_now(),
        dry_run=args.dry_run,
        force_sweep=force_sweep,
    )


def _loop_run(args: argparse.Namespace, settings: Settings, number: int) -> None:
    """One run of ``--every``: the summary logged as the timer logs it, the report as one JSON
    line with ``--json``; ``--sweep`` applies to the first run."""
    report = _run(args, settings, force_sweep=args.sweep and number == 0)
    log_summary(report)
    if args.json:
        print(json.dumps(report.to_json()), flush=True)


if __name__ == "__main__":
    raise SystemExit(run_until_reader_gone(main))
