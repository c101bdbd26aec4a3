"""The publisher against the emulator's topic over real HTTP: what it sends, what refuses it."""

from __future__ import annotations

import logging
import time

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from local_runtime.processes import free_port
from recording_pipeline.clients import recording_events_client
from recording_pipeline.events_out.cloud_events import EventName, RecordingFacts, status_event
from recording_pipeline.events_out.publisher import EventsPublisher
from recording_pipeline.settings import Settings
from tests.functions.events_out.conftest import published, topic_env
from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING
from tests.support.emulator import RunningEmulator

BASE_ENV = {
    "ACS_ENDPOINT": "http://127.0.0.1:9",
    "ACS_RESOURCE_ID": "/subscriptions/s/resourceGroups/g/providers/"
    "Microsoft.Communication/communicationServices/acs",
    "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
    "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
}


def publisher_for(env: dict[str, str], **options: float) -> EventsPublisher:
    client = recording_events_client(Settings.from_env({**BASE_ENV, **env}))
    assert client is not None
    return EventsPublisher(client, **options)  # type: ignore[arg-type]


def lost_event(recording_id: str = "rec-1", reason: str = "gone") -> dict:
    return status_event(
        EventName.LOST,
        RecordingFacts(recording_id, "server-1", "call-1", "audio", "mixed", "wav"),
        source=BASE_ENV["ACS_RESOURCE_ID"],
        occurred_at="2026-05-06T07:00:00.000001Z",
        reason=reason,
    )


def test_the_event_arrives_exactly_as_built_and_the_sdk_stays_quiet(
    topic: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    event = lost_event()
    with caplog.at_level(logging.WARNING):
        publisher_for(topic_env(topic)).publish(event)

    assert published(topic) == [event]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("azure")] == []


def test_a_wrong_key_is_refused_as_an_authentication_error(topic: RunningEmulator) -> None:
    with pytest.raises(ClientAuthenticationError) as raised:
        publisher_for(topic_env(topic, key="wrong-key")).publish(lost_event())

    assert raised.value.status_code == 401
    assert published(topic) == []


def test_an_oversized_event_is_refused_with_413(topic: RunningEmulator) -> None:
    event = lost_event()
    event["data"]["reason"] = "x" * 1_000_001  # the builder caps reasons; the topic caps events
    with pytest.raises(HttpResponseError) as raised:
        publisher_for(topic_env(topic)).publish(event)

    assert raised.value.status_code == 413
    assert published(topic) == []


def test_an_outage_is_retried_per_call(topic: RunningEmulator) -> None:
    """The retry count reaches the pipeline though the sync client drops constructor options."""
    topic.simulation.set_faults(
        [{"operation": "publish_events", "kind": "error", "status": 503, "times": 1}]
    )
    publisher_for(topic_env(topic), retry_total=1).publish(lost_event("rec-retried"))
    assert [e["data"]["recordingId"] for e in published(topic)] == ["rec-retried"]

    topic.simulation.set_faults(
        [{"operation": "publish_events", "kind": "error", "status": 503, "times": 1}]
    )
    with pytest.raises(HttpResponseError) as raised:
        publisher_for(topic_env(topic), retry_total=0).publish(lost_event("rec-refused"))
    assert raised.value.status_code == 503
    assert [e["data"]["recordingId"] for e in published(topic)] == ["rec-retried"]


def test_an_unreachable_topic_fails_within_the_per_call_limits() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/api/events"
    publisher = publisher_for(
        {"RECORDING_EVENTS_TOPIC_ENDPOINT": endpoint, "RECORDING_EVENTS_TOPIC_KEY": "k"},
        retry_total=1,
    )
    started = time.monotonic()
    with pytest.raises(ServiceRequestError):
        publisher.publish(lost_event())
    assert time.monotonic() - started < 10


def test_without_an_endpoint_there_is_no_client_and_a_key_alone_is_refused() -> None:
    assert recording_events_client(Settings.from_env(BASE_ENV)) is None
    with pytest.raises(ValueError, match="RECORDING_EVENTS_TOPIC_KEY is set without"):
        Settings.from_env({**BASE_ENV, "RECORDING_EVENTS_TOPIC_KEY": "k"})


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://mytopic.westeurope-1.eventgrid.azure.net",
        "https://mytopic.westeurope-1.eventgrid.azure.net/api/events?x=1",
        "http://mytopic.westeurope-1.eventgrid.azure.net/api/events",
        "mytopic.westeurope-1.eventgrid.azure.net/api/events",
    ],
)
def test_an_endpoint_that_is_not_a_topic_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="RECORDING_EVENTS_TOPIC_ENDPOINT"):
        Settings.from_env({**BASE_ENV, "RECORDING_EVENTS_TOPIC_ENDPOINT": endpoint})


def test_the_topic_endpoint_of_azure_is_accepted() -> None:
    endpoint = "https://mytopic.westeurope-1.eventgrid.azure.net/api/events"
    settings = Settings.from_env({**BASE_ENV, "RECORDING_EVENTS_TOPIC_ENDPOINT": endpoint})
    assert settings.recording_events_topic_endpoint == endpoint
    assert settings.recording_events_topic_key is None
    assert "k-secret-value" not in repr(Settings.from_env({**BASE_ENV, **topic_like_local()}))


def topic_like_local() -> dict[str, str]:
    return {
        "RECORDING_EVENTS_TOPIC_ENDPOINT": "http://127.0.0.1:8/api/events",
        "RECORDING_EVENTS_TOPIC_KEY": "k-secret-value",
    }
