"""``python -m scripts.reconcile`` as a person runs it: the report, JSON, exit codes, settings."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import timedelta

import pytest

from recording_pipeline.clock import utc_now
from recording_pipeline.registry.pending import PendingIndex
from scripts import reconcile
from tests.functions.reconcile.conftest import Bed, synthetic_event


@pytest.fixture
def environment(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> Bed:
    for name in ("ARCHIVE_ACCOUNT_NAME", "ARCHIVE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    for name, value in bed.env.items():
        monkeypatch.setenv(name, value)
    return bed


def test_a_quiet_run_exits_zero_with_its_summary_line(
    environment: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reconcile.main([]) == reconcile.OK
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("reconcile ") and out[-1].endswith("-> ok")


def test_something_for_a_person_exits_one_and_json_tells_what(
    environment: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.stopped("rec-cli+/=", utc_now() - timedelta(hours=2))

    code = reconcile.main(["--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == reconcile.NEEDS_PERSON
    assert report["needsPerson"] is True
    assert [item["recordingId"] for item in report["overdue"]["marked"]] == ["rec-cli+/="]
    assert environment.entity("rec-cli+/=")["ArchiveStatus"] == "overdue"


def test_a_dry_run_prints_each_recording_and_changes_nothing(
    environment: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.stopped("rec-dry", utc_now() - timedelta(hours=2))

    code = reconcile.main(["--dry-run"])

    out = capsys.readouterr().out
    assert code == reconcile.NEEDS_PERSON
    assert "overdue marked: rec-dry" in out
    assert out.strip().splitlines()[-1].startswith("reconcile (dry run) ")
    assert "ArchiveStatus" not in environment.entity("rec-dry")


def test_the_connection_string_option_replaces_the_account(
    environment: Bed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = environment.env["ARCHIVE_STORAGE_CONNECTION_STRING"]
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("ARCHIVE_ACCOUNT_NAME", "someaccount")
    environment.stopped("rec-local", utc_now() - timedelta(hours=2))

    code = reconcile.main(["--connection-string", connection, "--json"])

    assert code == reconcile.NEEDS_PERSON
    assert json.loads(capsys.readouterr().out)["overdue"]["marked"][0]["recordingId"] == "rec-local"


def test_bad_settings_exit_two_with_every_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ACS_ENDPOINT", "ACS_RESOURCE_ID", "ARCHIVE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OVERDUE_AFTER_MINUTES", "1")

    assert reconcile.main([]) == reconcile.USAGE
    err = capsys.readouterr().err
    assert "ACS_ENDPOINT is required" in err
    assert "OVERDUE_AFTER_MINUTES ('1') must be between 5 and 720" in err


def test_the_loop_keeps_dry_run_json_and_sweep(
    environment: Bed, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--every`` runs until SIGTERM; each run is a dry run, reported as one JSON line, and the
    first one sweeps although no sweep is due (the bed's first run would sweep anyway, so the
    sweep is marked done first)."""
    environment.stopped("rec-loop", utc_now() - timedelta(hours=2))
    environment.clients.dead_letters.create_container()
    environment.clients.dead_letters.upload_blob(
        "t/1.json", json.dumps([synthetic_event().event()])
    )
    PendingIndex(environment.table).mark_swept(utc_now())
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # if the loop never starts
    stopper = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    stopper.start()
    try:
        code = reconcile.main(["--every", "0.2", "--dry-run", "--json", "--sweep"])
    finally:
        stopper.cancel()
        signal.signal(signal.SIGTERM, previous)

    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == reconcile.OK
    assert len(reports) >= 2
    assert all(report["dryRun"] for report in reports)
    assert [report["sweep"]["ran"] for report in reports[:2]] == [True, False]
    assert all(len(report["deadLetters"]["requeued"]) == 1 for report in reports)
    assert "ArchiveStatus" not in environment.entity("rec-loop")
    assert environment.queued_events() == []
    blobs = list(environment.clients.dead_letters.list_blobs(include=["tags"]))
    assert [blob.tags for blob in blobs] == [None]
