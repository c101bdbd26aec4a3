"""The retention-window guard end to end: what Event Grid or the archive loses, recovered or said.

The pieces of the local stack, wired in this process: the emulator (manual clock) delivering to
an Azurite queue and dead-lettering to an Azurite container when a fault rule says so, the API
(recordings started and stopped over HTTP, so the stop index is the API's own), the archive
worker with the Functions host's queue semantics (fast retries), and reconciler runs at chosen
moments. Each test follows its own recording; every test checks no recording was archived twice.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from local_runtime.archive_worker import ArchiveWorker
from local_runtime.processes import Azurite
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.events import parse_event_message
from recording_pipeline.archive.host_json import QueueHostOptions
from recording_pipeline.clock import utc_now
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import ReconcileReport
from recording_pipeline.reconcile.run import ReconcileClients, run
from recording_pipeline.registry.pending import PendingIndex
from recording_pipeline.settings import Settings
from tests.functions.archive.conftest import FAST_RETRY
from tests.functions.stack import FUNCTION_KEY, ApiServer, stack_environment, start_api
from tests.support.emulator import RunningEmulator, start_emulator


@dataclass
class Guarded:
    """The stack pieces and what the archive worker did with each message."""

    emulator: RunningEmulator
    api: ApiServer
    settings: Settings
    clients: ReconcileClients
    outcomes: Counter[tuple[str, ArchiveOutcome]] = field(default_factory=Counter)

    @property
    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api.base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30
        )

    def record(self, faults: list[dict[str, Any]] | None = None) -> str:
        """A one-participant call recorded through the API and stopped; ``faults`` are set for
        this recording before the stop (``recordingId`` filled in)."""
        call = self.emulator.simulation.create_call([f"8:acs:guard-{uuid.uuid4().hex[:8]}"])
        with self.http as http:
            started = http.post(
                "/api/recordings",
                json={"serverCallId": call["serverCallId"], "content": "audio", "format": "wav"},
            )
            assert started.status_code == 201, started.text
            recording_id = started.json()["recordingId"]
            self.emulator.simulation.set_faults(
                [{**rule, "recordingId": recording_id} for rule in faults or []]
            )
            self.emulator.simulation.advance_clock(2)
            stopped = http.delete(f"/api/recordings/{quote(recording_id, safe='')}")
            assert stopped.status_code == 200, stopped.text
        return recording_id

    def archive_view(self, recording_id: str) -> dict[str, Any] | None:
        with self.http as http:
            answer = http.get(f"/api/recordings/{quote(recording_id, safe='')}")
        assert answer.status_code == 200, answer.text
        return answer.json()["registry"]["archive"]

    def wait_for_status(self, recording_id: str, status: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.archive_view(recording_id)
            if view is not None and view["status"] == status:
                return view
            time.sleep(0.1)
        raise AssertionError(f"{recording_id} not {status} in {timeout}s: {view}")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def indexed(self, recording_id: str) -> bool:
        far = utc_now() + timedelta(days=3)
        return any(
            r.recording_id == recording_id
            for r in PendingIndex(self.clients.table).stopped_before(far)
        )

    def reconcile(self, later: timedelta = timedelta(0)) -> ReconcileReport:
        policy = ReconcilePolicy.from_settings(self.settings)
        return run(self.clients, policy, now=utc_now() + later)

    def archived(self, recording_id: str) -> int:
        """How many times the archiver returned ARCHIVED for the recording, once it has returned:
        the registry says ``archived`` before the archiver announces it, deletes it from ACS and
        returns."""
        self.wait_until(
            lambda: (
                self.outcomes[(recording_id, ArchiveOutcome.ARCHIVED)] > 0
                or (self.archive_view(recording_id) or {}).get("status") != "archived"
            ),
            "the archiver's return",
        )
        return self.outcomes[(recording_id, ArchiveOutcome.ARCHIVED)]

    def poison_contents(self) -> list[str]:
        return [m.content for m in self.clients.poison.peek_messages(max_messages=32)]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, azurite: Azurite) -> Iterator[Guarded]:
    suffix = uuid.uuid4().hex[:10]
    names = {
        "EVENTS_QUEUE": f"events{suffix}",
        "RECORDINGS_CONTAINER": f"rec{suffix}",
        "DEAD_LETTER_CONTAINER": f"dl{suffix}",
    }
    emulator = start_emulator(
        tmp_path_factory.mktemp("guard"),
        azurite=azurite,
        queue_name=names["EVENTS_QUEUE"],
        extra_args=["--dead-letter-container", names["DEAD_LETTER_CONTAINER"]],
    )
    env = {**stack_environment(emulator, azurite, table=f"guard{suffix}"), **names}
    settings = Settings.from_env(env)
    clients = ReconcileClients.from_settings(settings)
    clients.table.create_table()
    clients.recordings.create_container()
    clients.poison.create_queue()
    api = start_api(env)
    guard = Guarded(emulator, api, settings, clients)
    stop = threading.Event()
    worker = ArchiveWorker(
        settings,
        clients.events,
        clients.poison,
        QueueHostOptions(5, 0.05, 4, 0.1),
        lease_seconds=30,
        handler=functools.partial(_counting_handler, guard),
    )
    thread = threading.Thread(target=worker.run, args=(stop,), name="archive-worker", daemon=True)
    thread.start()
    try:
        yield guard
    finally:
        stop.set()
        thread.join(30)
        api.stop()
        emulator.stop()


def _counting_handler(guard: Guarded, body: str, **kwargs: Any) -> ArchiveOutcome:
    outcome = handle_event_message(body, retry=FAST_RETRY, **kwargs)
    try:
        recording_id = parse_event_message(body, resource_id=guard.settings.acs_resource_id)
        guard.outcomes[(recording_id.recording_id, outcome)] += 1
    except Exception:  # a rejected body names no recording we follow
        guard.outcomes[("-", outcome)] += 1
    return outcome


def test_a_dead_lettered_event_is_recovered_by_the_reconciler_and_archived_once(
    guarded: Guarded,
) -> None:
    recording_id = guarded.record([{"operation": "events", "kind": "deadletter"}])
    outcome, _ = guarded.emulator.simulation.wait_for_event_outcome(recording_id)
    assert outcome == "deadLettered"
    assert guarded.archive_view(recording_id) is None  # nothing reached the archiver

    report = guarded.reconcile()

    assert [item["recordingId"] for item in report.dead_letters.requeued] == [recording_id]
    view = guarded.wait_for_status(recording_id, "archived")
    assert view["chunkCount"] == 1
    again = guarded.reconcile()
    assert again.dead_letters.requeued == []
    assert guarded.archived(recording_id) == 1


def test_a_transient_failure_that_reached_the_poison_queue_is_replayed_and_archived(
    guarded: Guarded,
) -> None:
    recording_id = guarded.record(
        [{"operation": "download_recording", "kind": "error", "status": 503}]
    )
    view = guarded.wait_for_status(recording_id, "failed")
    assert view["error"].startswith("SourceUnavailableError")
    guarded.wait_until(lambda: len(guarded.poison_contents()) > 0, "the host's poison move")
    guarded.emulator.simulation.set_faults([])  # the outage ends

    report = guarded.reconcile()

    assert [item["recordingId"] for item in report.poison.replayed] == [recording_id]
    guarded.wait_for_status(recording_id, "archived")
    assert guarded.archived(recording_id) == 1
    assert not any(recording_id in content for content in guarded.poison_contents())


def test_a_rejected_event_stays_in_the_poison_queue_and_its_recording_is_overdue(
    guarded: Guarded,
) -> None:
    recording_id = guarded.record([{"operation": "events", "kind": "drop"}])
    _, event = guarded.emulator.simulation.wait_for_event_outcome(recording_id)
    forged = {**event, "topic": event["topic"] + "-other"}
    guarded.clients.events.send_message(json.dumps(forged))
    guarded.wait_until(lambda: len(guarded.poison_contents()) > 0, "the archiver's rejection")
    guarded.wait_until(lambda: guarded.indexed(recording_id), "the API's stop index")

    report = guarded.reconcile(timedelta(minutes=31))

    envelopes = [json.loads(c) for c in guarded.poison_contents() if c.startswith("{")]
    assert any("not the configured ACS resource" in e.get("reason", "") for e in envelopes)
    assert any("not the configured ACS resource" in r["reason"] for r in report.poison.rejected)
    assert report.poison.replayed == []
    assert recording_id in [item["recordingId"] for item in report.overdue.marked]
    assert guarded.archived(recording_id) == 0


def test_an_event_never_sent_makes_the_recording_overdue_then_lost(guarded: Guarded) -> None:
    recording_id = guarded.record([{"operation": "events", "kind": "drop"}])
    assert guarded.emulator.simulation.wait_for_event_outcome(recording_id)[0] == "dropped"
    guarded.wait_until(lambda: guarded.indexed(recording_id), "the API's stop index")

    assert guarded.reconcile(timedelta(minutes=20)).overdue.marked == []
    overdue = guarded.reconcile(timedelta(minutes=31))

    assert recording_id in [item["recordingId"] for item in overdue.overdue.marked]
    assert overdue.needs_person
    view = guarded.archive_view(recording_id)
    assert view is not None and view["status"] == "overdue" and view["overdueAt"]
    with guarded.http as http:
        listed = http.get("/api/recordings", params={"archiveStatus": "overdue", "limit": 100})
    items = {item["recordingId"]: item for item in listed.json()["items"]}
    assert items[recording_id]["overdueAt"] == view["overdueAt"]

    # A day later ACS's window has passed (its media expired on the emulator's clock too).
    guarded.emulator.simulation.advance_clock(25 * 3600)
    lost = guarded.reconcile(timedelta(hours=25, minutes=5))

    assert recording_id in [item["recordingId"] for item in lost.overdue.lost]
    view = guarded.archive_view(recording_id)
    assert view is not None and view["status"] == "lost"
    assert "retention window" in view["error"]
    objects = guarded.emulator.simulation.objects()["objects"]
    assert {o["status"] for o in objects if o["recordingId"] == recording_id} == {"expired"}
    assert guarded.archived(recording_id) == 0


def test_no_recording_was_archived_twice(guarded: Guarded) -> None:
    twice = {key: count for key, count in guarded.outcomes.items() if count > 1}
    archived = [key for key in guarded.outcomes if key[1] is ArchiveOutcome.ARCHIVED]
    assert archived, "the tests above archived nothing"
    assert {k: v for k, v in twice.items() if k[1] is ArchiveOutcome.ARCHIVED} == {}
