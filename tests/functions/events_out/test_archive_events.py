"""The archiver announces what it did: archived, lost, failed; at least once, never at the
archive's expense. Real Azurite, the synthetic media server as ACS, the emulator as the topic."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from datetime import timedelta

import pytest

from local_runtime.media_server import Fault, SyntheticMediaServer
from local_runtime.processes import Azurite, free_port
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.layout import recording_prefix
from recording_pipeline.clock import utc_now
from recording_pipeline.events_out.cloud_events import EventName, event_id
from recording_pipeline.ids import encode_id
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.run import ReconcileClients, run
from tests.functions.archive.conftest import (
    FAST_RETRY,
    RESOURCE_ID,
    ArchiveStack,
    SyntheticRecording,
    publish_recording,
    register_recording,
)
from tests.functions.events_out.conftest import (
    events_stack_for,
    pending_events,
    published,
    topic_env,
)
from tests.support.emulator import RunningEmulator
from tests.support.event_schemas import schema_problems


def archive(
    stack: ArchiveStack, recording: SyntheticRecording, *, dequeue_count: int = 1
) -> ArchiveOutcome:
    """Archive the recording's event, its registry row written first as the API's start and a
    verified callback write it (the archiver binds an event only to a row it knows)."""
    register_recording(
        stack.table, recording.call_id, recording.server_call_id, recording.recording_id
    )
    return handle_event_message(
        recording.message(),
        dequeue_count=dequeue_count,
        message_id=recording.event_id,
        settings=stack.settings,
        retry=FAST_RETRY,
    )


def markers(caplog: pytest.LogCaptureFixture, recording_id: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
        and r.getMessage().startswith(f"EVENT_PUBLISH_FAILED recording {recording_id}:")
    ]


def test_an_archive_is_announced_once_with_every_file(
    events_stack: ArchiveStack, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> None:
    recording = publish_recording(media_server, [3000, 2000], participants=3)

    assert archive(events_stack, recording) is ArchiveOutcome.ARCHIVED

    (event,) = published(topic)
    assert schema_problems(event) == []
    prefix = recording_prefix(recording.call_id, recording.recording_id, recording.start_time)
    manifest = json.loads(events_stack.read_blob(f"{prefix}manifest.json"))
    assert event["id"] == event_id(EventName.ARCHIVED, recording.recording_id)
    assert event["type"] == "AcsCallRecording.RecordingArchived"
    assert event["source"] == RESOURCE_ID
    assert event["subject"] == f"/recordings/{encode_id(recording.recording_id)}"
    data = event["data"]
    assert (data["recordingId"], data["serverCallId"], data["callId"]) == (
        recording.recording_id,
        recording.server_call_id,
        recording.call_id,
    )
    assert data["format"] == {"content": "audio", "channel": "unmixed", "format": "wav"}
    assert data["participants"] == manifest["participants"]
    assert data["archivedAt"] == manifest["archivedAt"]
    container = events_stack.container
    assert data["manifest"]["url"] == container.get_blob_client(f"{prefix}manifest.json").url
    assert len(data["files"]) == 4
    for entry in data["files"]:
        blob = container.get_blob_client(prefix + entry["name"])
        assert entry["url"] == blob.url
        body = blob.download_blob().readall()
        assert len(body) == entry["sizeBytes"]
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        assert base64.b64encode(digest).decode() == entry["md5"]
    assert pending_events(events_stack) == []


def test_a_redelivery_announces_the_same_event_again(
    events_stack: ArchiveStack, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> None:
    recording = publish_recording(media_server, [1500], participants=1)

    assert archive(events_stack, recording) is ArchiveOutcome.ARCHIVED
    assert archive(events_stack, recording) is ArchiveOutcome.ALREADY_ARCHIVED

    first, again = published(topic)
    assert again == first
    assert first["id"] == event_id(EventName.ARCHIVED, recording.recording_id)


def test_a_publish_that_fails_never_fails_the_archive_and_the_reconciler_publishes_it(
    events_stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    topic: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recording = publish_recording(media_server, [2500], participants=2)
    topic.simulation.set_faults([{"operation": "publish_events", "kind": "error", "status": 503}])

    with caplog.at_level(logging.ERROR):
        assert archive(events_stack, recording) is ArchiveOutcome.ARCHIVED
    archived_at = utc_now()

    entity = events_stack.recording_entity(recording.recording_id)
    assert entity is not None and entity["ArchiveStatus"] == "archived"
    assert published(topic) == []
    (marker,) = markers(caplog, recording.recording_id)
    assert "RecordingArchived not published" in marker and "503" in marker
    (pending,) = pending_events(events_stack)
    assert pending.recording_id == recording.recording_id
    assert pending.event_name == "RecordingArchived"

    topic.simulation.set_faults([])
    clients = ReconcileClients.from_settings(events_stack.settings)
    policy = ReconcilePolicy.from_settings(events_stack.settings)
    early = run(clients, policy, now=archived_at + timedelta(minutes=5))
    assert early.events.published == [] and published(topic) == []

    later = run(clients, policy, now=archived_at + timedelta(minutes=16))

    assert [item["recordingId"] for item in later.events.published] == [recording.recording_id]
    (event,) = published(topic)
    assert event["id"] == event_id(EventName.ARCHIVED, recording.recording_id)
    assert schema_problems(event) == []
    assert len(event["data"]["files"]) == 2
    assert pending_events(events_stack) == []
    assert "events: 1 published late, 0 failing" in later.summary()
    assert run(clients, policy, now=archived_at + timedelta(minutes=30)).events.published == []


def test_an_unreachable_topic_costs_the_archive_seconds_not_its_success(
    azurite: Azurite, media_server: SyntheticMediaServer, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/api/events"
    stack = events_stack_for(
        azurite,
        media_server,
        {"RECORDING_EVENTS_TOPIC_ENDPOINT": endpoint, "RECORDING_EVENTS_TOPIC_KEY": "k"},
    )
    recording = publish_recording(media_server, [1000], participants=1)

    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        assert archive(stack, recording) is ArchiveOutcome.ARCHIVED

    assert time.monotonic() - started < 20
    (marker,) = markers(caplog, recording.recording_id)
    assert "ServiceRequestError" in marker
    assert [p.event_name for p in pending_events(stack)] == ["RecordingArchived"]


def test_a_recording_acs_no_longer_has_is_announced_lost(
    events_stack: ArchiveStack, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> None:
    recording = publish_recording(media_server, [1000], participants=1)
    del media_server.objects[recording.chunks[0].content_path]

    assert archive(events_stack, recording) is ArchiveOutcome.LOST

    (event,) = published(topic)
    assert schema_problems(event) == []
    assert event["type"] == "AcsCallRecording.RecordingLost"
    assert "404" in event["data"]["reason"]
    assert event["data"]["callId"] == recording.call_id
    entity = events_stack.recording_entity(recording.recording_id)
    assert entity is not None and event["data"]["reason"] == entity["ArchiveError"]
    assert pending_events(events_stack) == []


def test_the_last_failed_attempt_is_announced_and_earlier_ones_are_not(
    events_stack: ArchiveStack, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> None:
    recording = publish_recording(media_server, [1000], participants=1)
    media_server.add_fault(recording.chunks[0].content_path, Fault(times=1000, status=500))

    with pytest.raises(Exception, match=r"SourceUnavailable|500"):
        archive(events_stack, recording, dequeue_count=1)
    assert published(topic) == []
    with pytest.raises(Exception, match=r"SourceUnavailable|500"):
        archive(events_stack, recording, dequeue_count=5)

    (event,) = published(topic)
    assert schema_problems(event) == []
    assert event["type"] == "AcsCallRecording.RecordingFailed"
    assert event["data"]["retryable"] is True
    assert pending_events(events_stack) == []


def test_with_publishing_off_nothing_is_noted_or_sent(
    azurite: Azurite, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> None:
    stack = events_stack_for(azurite, media_server, {})
    recording = publish_recording(media_server, [1000], participants=1)

    assert archive(stack, recording) is ArchiveOutcome.ARCHIVED

    assert published(topic) == []
    assert pending_events(stack) == []
    report = run(
        ReconcileClients.from_settings(stack.settings),
        ReconcilePolicy.from_settings(stack.settings),
        now=utc_now() + timedelta(hours=1),
    )
    assert report.events.ran is False
    assert "events: off" in report.summary()


def test_a_refused_key_is_for_a_person_at_the_reconciler(
    azurite: Azurite,
    media_server: SyntheticMediaServer,
    topic: RunningEmulator,
) -> None:
    stack = events_stack_for(azurite, media_server, topic_env(topic, key="not-the-key"))
    recording = publish_recording(media_server, [1000], participants=1)
    assert archive(stack, recording) is ArchiveOutcome.ARCHIVED

    report = run(
        ReconcileClients.from_settings(stack.settings),
        ReconcilePolicy.from_settings(stack.settings),
        now=utc_now() + timedelta(minutes=20),
    )

    (failing,) = report.events.failing
    assert failing["retry"] == "permanent" and "401" in failing["error"]
    assert report.needs_person
    assert published(topic) == []
    assert len(pending_events(stack)) == 1
