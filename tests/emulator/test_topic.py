"""The emulator's Event Grid custom topic, driven by the real azure-eventgrid SDK and by raw HTTP.

What a publisher meets in Azure: the key checked first (401), then the api-version, the sizes
(413: 1 MB per event and per request), the content type and every event's CloudEvents
attributes (400 with Event Grid's ``{"error": {"code", "message", "details"}}``). A refused
request stores nothing; an accepted one is readable at ``GET /emulator/topic-events``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridPublisherClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.emulator import RunningEmulator

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def event(**overrides: Any) -> dict[str, Any]:
    base = {
        "specversion": "1.0",
        "id": "6c7e7a8e-0000-4000-8000-000000000001",
        "source": "/subscriptions/s/resourceGroups/g/providers/x/y",
        "type": "AcsCallRecording.RecordingArchived",
        "subject": "/recordings/rec-1",
        "time": "2026-05-06T07:00:00.123456Z",
        "datacontenttype": "application/json",
        "data": {"recordingId": "rec-1"},
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def publisher(emulator: RunningEmulator, key: str | None = None) -> EventGridPublisherClient:
    return EventGridPublisherClient(
        emulator.topic_endpoint, AzureKeyCredential(key or emulator.topic_key)
    )


def post(
    emulator: RunningEmulator,
    body: bytes,
    *,
    content_type: str = BATCH,
    key: str | None = None,
    api_version: str | None = "2018-01-01",
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["aeg-sas-key"] = key
    params = {"api-version": api_version} if api_version else {}
    return httpx.post(emulator.topic_endpoint, content=body, headers=headers, params=params)


def received(emulator: RunningEmulator) -> list[dict[str, Any]]:
    return [item["event"] for item in emulator.simulation.topic_events()]


def test_the_sdk_publishes_a_cloud_event_dict_unchanged(emulator: RunningEmulator) -> None:
    sent = event()
    with publisher(emulator) as client:
        client.send([sent], retry_total=0)

    assert received(emulator) == [sent]
    (item,) = emulator.simulation.topic_events()
    assert item["receivedAt"].endswith("Z")


def test_the_sdk_publishes_cloud_event_objects_as_a_batch(emulator: RunningEmulator) -> None:
    first = CloudEvent(source="/test", type="Test.One", data={"n": 1}, subject="/a")
    second = CloudEvent(source="/test", type="Test.Two", data=b"\x00\x01")
    with publisher(emulator) as client:
        client.send([first, second], retry_total=0)

    stored = received(emulator)
    assert [e["type"] for e in stored] == ["Test.One", "Test.Two"]
    assert stored[0]["data"] == {"n": 1} and stored[0]["id"] == first.id
    assert stored[1]["data_base64"] == "AAE=" and "data" not in stored[1]


def test_a_wrong_key_is_401_and_nothing_is_stored(emulator: RunningEmulator) -> None:
    with (
        publisher(emulator, key="not-the-key") as client,
        pytest.raises(ClientAuthenticationError) as raised,
    ):
        client.send([event()], retry_total=0)

    assert raised.value.status_code == 401
    assert raised.value.error.code == "Unauthorized"
    assert received(emulator) == []


def test_no_key_and_a_bearer_token_are_401(emulator: RunningEmulator) -> None:
    answer = post(emulator, json.dumps([event()]).encode())
    assert answer.status_code == 401
    assert "no aeg-sas-key header" in answer.json()["error"]["message"]

    class Token:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("not-a-real-token", 4102444800)

    token_client = EventGridPublisherClient(emulator.topic_endpoint, Token())  # type: ignore[arg-type]
    with token_client as client, pytest.raises(ClientAuthenticationError) as raised:
        client.send([event()], retry_total=0, enforce_https=False)
    assert "bearer token" in raised.value.message
    assert received(emulator) == []


def test_the_key_is_checked_before_anything_else(emulator: RunningEmulator) -> None:
    """An unauthenticated caller learns nothing about the request's other faults."""
    answer = post(emulator, b"not json", content_type="text/plain", key="wrong", api_version=None)
    assert answer.status_code == 401


def test_an_event_over_1_mb_is_413(emulator: RunningEmulator) -> None:
    big = event(data={"blob": "x" * 1_000_000})
    with publisher(emulator) as client, pytest.raises(HttpResponseError) as raised:
        client.send([big], retry_total=0)

    assert raised.value.status_code == 413
    assert raised.value.error.code == "PayloadTooLarge"
    assert received(emulator) == []


def test_a_request_over_1_mb_is_413_though_each_event_fits(emulator: RunningEmulator) -> None:
    half = [event(id=f"id-{n}", data={"blob": "x" * 600_000}) for n in range(2)]
    with publisher(emulator) as client, pytest.raises(HttpResponseError) as raised:
        client.send(half, retry_total=0)

    assert raised.value.status_code == 413
    assert "request is" in raised.value.message
    with publisher(emulator) as client:
        client.send(half[:1], retry_total=0)
    assert [e["id"] for e in received(emulator)] == ["id-0"]


def test_the_limit_is_1_000_000_bytes(emulator: RunningEmulator) -> None:
    def body(blob_length: int) -> bytes:
        return json.dumps([event(data={"blob": "x" * blob_length})]).encode()

    exact = 1_000_000 - len(body(0))
    assert len(body(exact)) == 1_000_000

    assert post(emulator, body(exact), key=emulator.topic_key).status_code == 200
    assert post(emulator, body(exact + 1), key=emulator.topic_key).status_code == 413
    assert len(received(emulator)) == 1


@pytest.mark.parametrize(
    ("content_type", "body", "code", "says"),
    [
        ("application/json", json.dumps([event()]), "UnsupportedContentType", "Content-Type"),
        (BATCH, "not json", "InputJsonInvalid", "not JSON"),
        (BATCH, json.dumps(event()), "InputJsonInvalid", "JSON array"),
        (BATCH, "[]", "InputJsonInvalid", "no event"),
        (BATCH, "[1]", "InputJsonInvalid", "not a JSON object"),
        (BATCH, json.dumps([event(specversion="0.3")]), "UnsupportedSpecVersion", "'1.0'"),
        (BATCH, json.dumps([event(time="yesterday")]), "InvalidAttribute", "RFC 3339"),
        (BATCH, json.dumps([event(subject="")]), "InvalidAttribute", "'subject'"),
        (BATCH, json.dumps([event(data_base64="AA==")]), "InvalidAttribute", "data_base64"),
        (BATCH, json.dumps([event(Bad_Name="x")]), "InvalidAttribute", "'Bad_Name'"),
    ],
)
def test_malformed_requests_are_400_naming_the_rule(
    emulator: RunningEmulator, content_type: str, body: str, code: str, says: str
) -> None:
    answer = post(emulator, body.encode(), content_type=content_type, key=emulator.topic_key)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["details"][0]["code"] == code
    assert says in error["message"]
    assert received(emulator) == []


def test_one_event_may_be_published_alone_as_cloudevents_json(emulator: RunningEmulator) -> None:
    single = event()
    answer = post(
        emulator,
        json.dumps(single).encode(),
        content_type="application/cloudevents+json",
        key=emulator.topic_key,
    )
    assert answer.status_code == 200
    assert received(emulator) == [single]


def test_the_api_version_is_required(emulator: RunningEmulator) -> None:
    for version in (None, "2024-06-01"):
        answer = post(
            emulator, json.dumps([event()]).encode(), key=emulator.topic_key, api_version=version
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["details"][0]["code"] == "UnsupportedApiVersion"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    missing=st.sampled_from(["id", "source", "specversion", "type"]),
    replacement=st.sampled_from([None, "", 7, ["x"]]),
    position=st.integers(min_value=0, max_value=3),
)
def test_an_event_without_a_required_attribute_refuses_the_whole_request(
    emulator: RunningEmulator, missing: str, replacement: Any, position: int
) -> None:
    batch = [event(id=f"ok-{n}") for n in range(4)]
    if replacement is None:
        del batch[position][missing]
    else:
        batch[position][missing] = replacement

    answer = post(emulator, json.dumps(batch).encode(), key=emulator.topic_key)

    assert answer.status_code == 400
    assert f"'{missing}'" in answer.json()["error"]["message"]
    assert f"[{position}]" in answer.json()["error"]["message"]
    assert received(emulator) == []


def test_a_publish_fault_fails_the_request_and_a_wildcard_rule_does_not(
    emulator: RunningEmulator,
) -> None:
    emulator.simulation.set_faults([{"operation": "*", "kind": "error", "status": 500}])
    with publisher(emulator) as client:
        client.send([event(id="through")], retry_total=0)

    emulator.simulation.set_faults(
        [{"operation": "publish_events", "kind": "error", "status": 503, "times": 1}]
    )
    with publisher(emulator) as client, pytest.raises(HttpResponseError) as raised:
        client.send([event(id="refused")], retry_total=0)
    assert raised.value.status_code == 503
    with publisher(emulator) as client:
        client.send([event(id="after")], retry_total=0)

    assert [e["id"] for e in received(emulator)] == ["through", "after"]


def test_reset_forgets_the_topic_events(emulator: RunningEmulator) -> None:
    with publisher(emulator) as client:
        client.send([event()], retry_total=0)
    emulator.simulation.reset()
    assert received(emulator) == []


def test_without_a_topic_key_no_topic_is_served(tmp_path: Any) -> None:
    from local_runtime.processes import emulator_process
    from tests.support.emulator import random_access_key

    process, endpoint = emulator_process(tmp_path / "emulator", random_access_key())
    process.start()
    try:
        answer = httpx.post(
            f"{endpoint}/api/events",
            params={"api-version": "2018-01-01"},
            content=json.dumps([event()]).encode(),
            headers={"Content-Type": BATCH, "aeg-sas-key": "anything"},
        )
        health = httpx.get(f"{endpoint}/emulator/health").json()
    finally:
        process.stop()
    assert answer.status_code == 404
    assert "--topic-key" in answer.json()["error"]["message"]
    assert health["topicEndpoint"] is None


def test_health_names_the_topic_endpoint(emulator: RunningEmulator) -> None:
    assert emulator.simulation.health()["topicEndpoint"] == emulator.topic_endpoint
