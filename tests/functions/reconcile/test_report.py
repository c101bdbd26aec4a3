"""The run's report: one line, the details as JSON, and when a person is needed."""

from __future__ import annotations

import json

import pytest

from recording_pipeline.reconcile.report import ReconcileReport


def test_a_quiet_run_needs_nobody_and_says_so_in_one_line() -> None:
    report = ReconcileReport(started_at="2026-05-06T07:00:00.000000Z", dry_run=False)

    assert not report.needs_person
    line = report.summary()
    assert "\n" not in line
    assert line.startswith("reconcile 2026-05-06T07:00:00.000000Z: ")
    assert line.endswith("-> ok")
    assert json.loads(json.dumps(report.to_json()))["needsPerson"] is False


@pytest.mark.parametrize(
    "fill",
    [
        lambda r: r.errors.append("poison: ServiceRequestError: down"),
        lambda r: r.dead_letters.unreadable.append({"blob": "b", "problem": "not JSON"}),
        lambda r: r.poison.permanent.append({"recordingId": "r", "error": "403"}),
        lambda r: r.poison.exhausted.append({"recordingId": "r", "replays": 5}),
        lambda r: r.overdue.marked.append({"recordingId": "r", "stoppedAt": "t"}),
        lambda r: r.overdue.still.append({"recordingId": "r", "stoppedAt": "t"}),
        lambda r: r.overdue.lost.append({"recordingId": "r", "stoppedAt": "t"}),
        lambda r: r.acs_deletes.failing.append({"recordingId": "r", "retry": "permanent"}),
    ],
    ids=["error", "unreadable", "permanent", "exhausted", "overdue", "still", "lost", "acs 403"],
)
def test_what_the_pipeline_cannot_repair_needs_a_person(fill) -> None:
    report = ReconcileReport(started_at="t", dry_run=False)
    fill(report)

    assert report.needs_person
    assert report.summary().endswith("-> NEEDS A PERSON")
    assert report.to_json()["needsPerson"] is True


@pytest.mark.parametrize(
    "fill",
    [
        lambda r: r.poison.replayed.append({"recordingId": "r", "replays": 1}),
        lambda r: r.poison.rejected.append({"messageId": "m", "reason": "foreign topic"}),
        lambda r: r.poison.waiting.append({"recordingId": "r", "replays": 1}),
        lambda r: r.dead_letters.requeued.append({"recordingId": "r"}),
        lambda r: r.acs_deletes.failing.append({"recordingId": "r", "retry": "transient"}),
    ],
    ids=["replayed", "rejected", "waiting", "requeued", "acs outage"],
)
def test_what_the_pipeline_repairs_or_retries_by_itself_does_not(fill) -> None:
    report = ReconcileReport(started_at="t", dry_run=False)
    fill(report)

    assert not report.needs_person
