"""A participant erase is announced: one RecordingErased per recording, naming nobody."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local_runtime.media_server import SyntheticMediaServer
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.clock import utc_now
from recording_pipeline.events_out.cloud_events import EventName, event_id
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.run import ReconcileClients, run
from scripts import export_participant
from tests.functions.archive.conftest import (
    FAST_RETRY,
    ArchiveStack,
    SyntheticRecording,
    publish_recording,
    register_recording,
)
from tests.functions.events_out.conftest import pending_events, published
from tests.support.emulator import RunningEmulator
from tests.support.event_schemas import schema_problems


def archive(stack: ArchiveStack, recording: SyntheticRecording) -> None:
    """The recording registered by the API and archived, as an erase finds it."""
    register_recording(
        stack.table, recording.call_id, recording.server_call_id, recording.recording_id
    )
    outcome = handle_event_message(
        recording.message(), message_id="m", settings=stack.settings, retry=FAST_RETRY
    )
    assert outcome is ArchiveOutcome.ARCHIVED


def test_an_erase_is_announced_without_naming_a_participant(
    events_stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    topic: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = publish_recording(
        media_server, [1200], participant_ids=["8:acs:erase-me", "4:+15550142"]
    )
    archive(events_stack, recording)
    for name, value in events_stack.env.items():
        monkeypatch.setenv(name, value)

    assert export_participant.main(["erase", "--participant-id", "8:acs:erase-me", "--yes"]) == 0

    archived, erased = published(topic)
    assert archived["type"] == "AcsCallRecording.RecordingArchived"
    assert schema_problems(erased) == []
    assert erased["type"] == "AcsCallRecording.RecordingErased"
    assert erased["id"] == event_id(EventName.ERASED, recording.recording_id)
    assert erased["data"]["recordingId"] == recording.recording_id
    assert erased["data"]["callId"] == recording.call_id
    text = json.dumps(erased)
    assert "erase-me" not in text and "15550142" not in text
    assert pending_events(events_stack) == []


def test_an_erase_by_a_tool_without_the_topic_setting_is_published_by_the_reconciler(
    events_stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    topic: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The operator's shell lacks RECORDING_EVENTS_TOPIC_ENDPOINT; the deployment publishes."""
    recording = publish_recording(media_server, [900], participant_ids=["8:acs:quiet-erase"])
    archive(events_stack, recording)
    for name, value in events_stack.env.items():
        if not name.startswith("RECORDING_EVENTS_TOPIC_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("RECORDING_EVENTS_TOPIC_ENDPOINT", raising=False)

    assert export_participant.main(["erase", "--participant-id", "8:acs:quiet-erase", "--yes"]) == 0

    assert "the reconciler publishes" in capsys.readouterr().out
    assert [e["type"] for e in published(topic)] == ["AcsCallRecording.RecordingArchived"]
    assert [row.event_name for row in pending_events(events_stack)] == ["RecordingErased"]

    policy = ReconcilePolicy()
    report = run(
        ReconcileClients.from_settings(events_stack.settings),
        policy,
        now=utc_now() + policy.event_publish_grace + timedelta(minutes=1),
    )

    assert [item["event"] for item in report.events.published] == ["RecordingErased"]
    erased = published(topic)[-1]
    assert erased["id"] == event_id(EventName.ERASED, recording.recording_id)
    assert schema_problems(erased) == []
    assert pending_events(events_stack) == []
