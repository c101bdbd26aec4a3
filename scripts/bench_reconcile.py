"""Benchmark of the retention-window guard: events lost at random, time to recover or mark each.

The local stack (Azurite, the emulator on its manual clock delivering to the events queue and
dead-lettering to ``event-deadletter``, the API) with the archive worker and the reconciler in
this process. ``--recordings`` calls are each recorded through the API (2 s of one participant's
audio) and stopped; before the stops, seeded fault rules pick which recordings' events go wrong:

- ``--dead-lettered`` share: the event is dead-lettered (a blob, as Event Grid writes it);
- ``--never-sent`` share: the event is dropped (nothing anywhere);
- ``--poisoned`` share: ACS answers 503 to every download of the recording until the archiver's
  last attempt has failed (``failed`` recorded, the message moved to the poison queue); then
  that recording's "outage" ends.

The reconciler runs every ``--every`` seconds (the timer's part; 10 minutes in Azure) until every
recoverable recording is archived; then one run at "stop + 31 minutes" marks the silent ones
overdue and one at "stop + 25 h 5 min" marks them lost (the reconciler's clock is passed in, so
nobody waits a day; the emulator's clock moves the day too, so ACS no longer has the media).
The archive worker uses fast retries (its attempts take milliseconds, not the host's minutes),
so the times measure the guard's own work, not Azure's retry schedules.

    python -m scripts.bench reconcile
    python -m scripts.bench_reconcile --recordings 200 --dead-lettered 0.10 --never-sent 0.05 \
        --poisoned 0.05 --every 2 --seed 13
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from emulator.simulation import EmulatorSimulation
from local_runtime.archive_worker import ArchiveWorker
from local_runtime.stack import LocalStack, running_stack
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import parse_event_message
from recording_pipeline.archive.host_json import QueueHostOptions
from recording_pipeline.archive.media_source import RetrySchedule
from recording_pipeline.clock import utc_now
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import ReconcileReport
from recording_pipeline.reconcile.run import ReconcileClients, run
from recording_pipeline.registry import schema
from recording_pipeline.settings import Settings

FAST_RETRY = RetrySchedule(max_failures=4, base_delay_seconds=0.01, max_delay_seconds=0.05)
WORKERS = 2
FATES = ("delivered", "dead-lettered", "never sent", "poisoned")


@dataclass
class Bench:
    stack: LocalStack
    settings: Settings
    clients: ReconcileClients
    sim: EmulatorSimulation
    archived: Counter[str] = field(default_factory=Counter)
    runs: list[float] = field(default_factory=list)

    def reconcile(self, at: datetime) -> ReconcileReport:
        started = time.monotonic()
        report = run(self.clients, ReconcilePolicy.from_settings(self.settings), now=at)
        self.runs.append(time.monotonic() - started)
        return report

    def statuses(self) -> dict[str, str]:
        entities = self.clients.table.query_entities(
            f"{schema.ROW_KEY} eq @row",
            parameters={"row": schema.RECORDING_ROW_KEY},
            select=[schema.RECORDING_ID, schema.ARCHIVE_STATUS],
        )
        return {
            str(e.get(schema.RECORDING_ID)): str(e.get(schema.ARCHIVE_STATUS) or "")
            for e in entities
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_reconcile")
    parser.add_argument("--recordings", type=int, default=200)
    parser.add_argument("--dead-lettered", type=float, default=0.10)
    parser.add_argument("--never-sent", type=float, default=0.05)
    parser.add_argument("--poisoned", type=float, default=0.05)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser


def assign_fates(recording_ids: list[str], args: argparse.Namespace) -> dict[str, str]:
    """Exactly the given shares, chosen by the seed."""
    shuffled = list(recording_ids)
    random.Random(args.seed).shuffle(shuffled)
    fates: dict[str, str] = {}
    start = 0
    for fate, share in zip(
        FATES[1:], (args.dead_lettered, args.never_sent, args.poisoned), strict=True
    ):
        count = round(share * len(shuffled))
        fates.update(dict.fromkeys(shuffled[start : start + count], fate))
        start += count
    fates.update(dict.fromkeys(shuffled[start:], "delivered"))
    return fates


def fault_rules(fates: dict[str, str]) -> list[dict[str, Any]]:
    kinds = {"dead-lettered": ("events", "deadletter"), "never sent": ("events", "drop")}
    rules = []
    for recording_id, fate in fates.items():
        if fate in kinds:
            operation, kind = kinds[fate]
            rules.append({"operation": operation, "kind": kind, "recordingId": recording_id})
        elif fate == "poisoned":
            rules.append(
                {
                    "operation": "download_recording",
                    "kind": "error",
                    "status": 503,
                    "recordingId": recording_id,
                }
            )
    return rules


def record_and_stop(bench: Bench, count: int, decide: Callable[[list[str]], None]) -> list[str]:
    """Start ``count`` recordings through the API, let ``decide`` set faults, stop them all."""
    headers = {"x-functions-key": bench.stack.function_key}
    ids: list[str] = []
    with httpx.Client(base_url=bench.stack.api_url, headers=headers, timeout=60) as http:
        for n in range(count):
            call = bench.sim.create_call([f"8:acs:bench-{n}"])
            body = {"serverCallId": call["serverCallId"], "content": "audio", "format": "wav"}
            answer = http.post("/api/recordings", json=body)
            answer.raise_for_status()
            ids.append(answer.json()["recordingId"])
        decide(ids)
        bench.sim.advance_clock(2)
        for recording_id in ids:
            http.delete(f"/api/recordings/{quote(recording_id, safe='')}").raise_for_status()
    return ids


def start_workers(bench: Bench, stop: threading.Event) -> list[threading.Thread]:
    def handler(body: str, **kwargs: Any) -> ArchiveOutcome:
        outcome = handle_event_message(body, retry=FAST_RETRY, **kwargs)
        if outcome is ArchiveOutcome.ARCHIVED:
            event = parse_event_message(body, resource_id=bench.settings.acs_resource_id)
            bench.archived[event.recording_id] += 1
        return outcome

    threads = []
    for n in range(WORKERS):
        worker = ArchiveWorker(
            bench.settings,
            bench.clients.events,
            bench.clients.poison,
            QueueHostOptions(5, 0.05, 4, 0.1),
            lease_seconds=60,
            handler=handler,
        )
        thread = threading.Thread(target=worker.run, args=(stop,), name=f"worker-{n}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def measure(args: argparse.Namespace) -> list[tuple[str, str]]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-reconcile-") as work,
        running_stack(
            Path(work),
            emulator_args=("--clock", "manual"),
            with_archive_worker=False,
            reconcile_every_seconds=0,
        ) as stack,
    ):
        settings = Settings.from_env(stack.function_env())
        bench = Bench(
            stack,
            settings,
            ReconcileClients.from_settings(settings),
            EmulatorSimulation(stack.emulator_url),
        )
        stop = threading.Event()
        threads = start_workers(bench, stop)
        try:
            return _scenario(bench, args)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)


def _scenario(bench: Bench, args: argparse.Namespace) -> list[tuple[str, str]]:
    fates: dict[str, str] = {}

    def decide(ids: list[str]) -> None:
        fates.update(assign_fates(ids, args))
        bench.sim.set_faults(fault_rules(fates))

    record_and_stop(bench, args.recordings, decide)
    stopped = time.monotonic()
    by_fate = {fate: {r for r, f in fates.items() if f == fate} for fate in FATES}
    recoverable = by_fate["delivered"] | by_fate["dead-lettered"] | by_fate["poisoned"]
    done_at: dict[str, float] = {}
    outages = set(by_fate["poisoned"])
    outage_ended: float | None = None
    deadline = stopped + args.timeout
    next_run = stopped
    while time.monotonic() < deadline:
        statuses = bench.statuses()
        now = time.monotonic() - stopped
        for fate in FATES[:2] + FATES[3:]:
            if fate not in done_at and all(statuses.get(r) == "archived" for r in by_fate[fate]):
                done_at[fate] = now
        ended = {r for r in outages if statuses.get(r) == "failed"}
        if ended:  # before the next run: the reconciler only sees what the host gave up on
            outages -= ended
            still = {r: f for r, f in fates.items() if f != "poisoned" or r in outages}
            bench.sim.set_faults(fault_rules(still))
            if not outages:
                outage_ended = now
        if all(statuses.get(r) == "archived" for r in recoverable):
            break
        if time.monotonic() >= next_run:
            bench.reconcile(utc_now())
            next_run = time.monotonic() + args.every
        time.sleep(0.2)
    recovered = time.monotonic() - stopped
    overdue = bench.reconcile(utc_now() + timedelta(minutes=31))
    overdue_seconds = bench.runs[-1]
    bench.sim.advance_clock(25 * 3600)
    lost = bench.reconcile(utc_now() + timedelta(hours=25, minutes=5))
    lost_seconds = bench.runs[-1]
    statuses = bench.statuses()
    twice = sum(1 for count in bench.archived.values() if count > 1)
    silent = by_fate["never sent"]
    marked_overdue = {item["recordingId"] for item in overdue.overdue.marked}
    marked_lost = {item["recordingId"] for item in lost.overdue.lost}
    unarchived = sorted(r for r in recoverable if statuses.get(r) != "archived")
    ok = not unarchived and marked_overdue == silent and marked_lost == silent and twice == 0
    counts = ", ".join(f"{len(by_fate[f])} {f}" for f in FATES)
    return [
        ("recordings stopped", f"{len(fates)} ({counts})"),
        *(
            (f"all {fate} ones archived", _seconds(done_at.get(fate)))
            for fate in ("delivered", "dead-lettered", "poisoned")
        ),
        ("last outage ended (its recording failed and was poisoned)", _seconds(outage_ended)),
        (
            "every recoverable one archived",
            f"{recovered:.1f} s"
            + ("" if not unarchived else f" MISMATCH: {len(unarchived)} not archived"),
        ),
        (
            "never sent: marked overdue by the run at stop + 31 min",
            f"{len(marked_overdue & silent)}/{len(silent)} in {overdue_seconds:.2f} s"
            + ("" if marked_overdue == silent else " MISMATCH"),
        ),
        (
            "never sent: marked lost by the run at stop + 25 h 5 min",
            f"{len(marked_lost & silent)}/{len(silent)} in {lost_seconds:.2f} s"
            + ("" if marked_lost == silent else " MISMATCH"),
        ),
        ("archived / archived twice", f"{len(bench.archived)} / {twice}" + (" (ok)" if ok else "")),
        (
            "reconciler runs: count, mean, max",
            f"{len(bench.runs)}, {statistics.mean(bench.runs):.2f} s, {max(bench.runs):.2f} s",
        ),
    ]


def _seconds(value: float | None) -> str:
    return "not reached MISMATCH" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The table is the output: the worker's failed attempts and the markers are expected here.
    logging.disable(logging.CRITICAL)
    try:
        rows = measure(args)
    finally:
        logging.disable(logging.NOTSET)
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 1 if any("MISMATCH" in value for _, value in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
