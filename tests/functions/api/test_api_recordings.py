"""Every recording route over real HTTP: API (uvicorn), real SDK, emulator, registry in Azurite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from local_runtime.processes import Azurite
from recording_pipeline.api import timing as server_timing
from tests.functions.stack import (
    FUNCTION_KEY,
    ApiServer,
    stack_environment,
    start_api,
    unique_table_name,
)
from tests.support.emulator import RunningEmulator, start_emulator

PROBLEM = "application/problem+json"


def new_call(emulator: RunningEmulator, *participants: str) -> dict[str, Any]:
    return emulator.simulation.create_call(list(participants or ("8:acs:alice", "8:acs:bob")))


def start_body(call: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"serverCallId": call["serverCallId"], "content": "audio", "format": "wav", **options}


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def acs_recordings_of(emulator: RunningEmulator, server_call_id: str) -> list[dict[str, Any]]:
    return [
        recording
        for recording in emulator.simulation.objects()["recordings"]
        if recording.get("serverCallId") == server_call_id
    ]


def test_health_answers_without_key_and_without_acs(anonymous_client: httpx.Client) -> None:
    response = anonymous_client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_document_lists_every_route(client: httpx.Client) -> None:
    document = client.get("/api/openapi.json").json()
    paths = document["paths"]
    assert set(paths) == {
        "/api/health",
        "/api/recordings",
        "/api/recordings/{recordingId}",
        "/api/recordings/{recordingId}/pause",
        "/api/recordings/{recordingId}/resume",
        "/api/recordings/{recordingId}/archive/manifest",
        "/api/recordings/{recordingId}/archive/files/{fileName}",
        "/api/callbacks",
    }
    assert set(paths["/api/recordings"]) == {"get", "post"}
    assert set(paths["/api/recordings/{recordingId}"]) == {"get", "delete"}
    start_answers = paths["/api/recordings"]["post"]["responses"]
    assert set(start_answers) == {"201", "400", "401", "403", "404", "409", "422", "502", "503"}
    assert list(start_answers["400"]["content"]) == [PROBLEM]


def test_full_lifecycle_with_registry_view_and_callbacks(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator, "8:acs:alice", "8:acs:bob")
    started = client.post(
        "/api/recordings",
        json=start_body(
            call,
            channel="unmixed",
            audioChannelParticipantOrdering=["8:acs:bob", "8:acs:alice"],
        ),
    )
    assert started.status_code == 201, started.text
    body = started.json()
    recording_id = body["recordingId"]
    assert body["state"] == "active"
    assert body["location"] == f"/api/recordings/{quote(recording_id, safe='')}"
    assert started.headers["location"] == body["location"]
    [at_acs] = acs_recordings_of(module_emulator, call["serverCallId"])
    assert at_acs["recordingId"] == recording_id
    assert at_acs["state"] == "active"

    location = body["location"]
    view = client.get(location).json()
    assert view["live"]["state"] == "active"
    registry = view["registry"]
    assert registry["serverCallId"] == call["serverCallId"]
    assert registry["options"]["channel"] == "unmixed"
    assert registry["options"]["audioChannelParticipantOrdering"] == ["8:acs:bob", "8:acs:alice"]
    assert registry["state"] == "active"
    assert registry["archive"] is None

    paused = client.post(f"{location}/pause")
    assert paused.json() == {"recordingId": recording_id, "state": "inactive"}
    assert client.get(location).json()["live"]["state"] == "inactive"
    resumed = client.post(f"{location}/resume")
    assert resumed.json() == {"recordingId": recording_id, "state": "active"}
    stopped = client.delete(location)
    assert stopped.json() == {"recordingId": recording_id, "state": "stopped"}

    def history_complete() -> dict[str, Any] | None:
        view = client.get(location).json()
        sources = [(e["source"], e["state"]) for e in view["registry"]["stateHistory"]]
        return view if sources.count(("callback", "inactive")) >= 2 else None

    final = wait_until(history_complete)
    assert final["live"] is None  # ACS forgets a stopped recording
    assert final["registry"]["state"] == "stopped"  # a late "inactive" callback does not revive it
    api_states = [e["state"] for e in final["registry"]["stateHistory"] if e["source"] == "api"]
    assert api_states == ["active", "inactive", "active", "stopped"]
    for entry in final["registry"]["stateHistory"]:
        assert entry["at"].endswith("Z")


def test_unknown_recording_is_404_on_every_route(client: httpx.Client) -> None:
    location = "/api/recordings/" + quote("no-such+recording/=", safe="")
    for method, path in (
        ("GET", location),
        ("POST", f"{location}/pause"),
        ("POST", f"{location}/resume"),
        ("DELETE", location),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["field"] == "recordingId"
        assert "no-such+recording/=" in problem["detail"]


def test_transitions_not_allowed_in_the_current_state_are_409(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    location = client.post("/api/recordings", json=start_body(call)).json()["location"]

    resume_active = client.post(f"{location}/resume")
    assert resume_active.status_code == 409
    assert "'active'" in resume_active.json()["detail"]
    assert client.post(f"{location}/pause").status_code == 200
    assert client.post(f"{location}/pause").status_code == 409
    assert client.delete(location).status_code == 200
    for method, path in (("POST", f"{location}/pause"), ("POST", f"{location}/resume")):
        response = client.request(method, path)
        assert response.status_code == 409
        assert "'stopped'" in response.json()["detail"]


def test_a_repeated_stop_answers_200_stopped_and_changes_nothing(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    location = client.post("/api/recordings", json=start_body(call)).json()["location"]
    first = client.delete(location)
    assert first.status_code == 200
    recording_id = first.json()["recordingId"]
    history = wait_until(lambda: _api_history(client, location, "stopped"))
    # ACS must not be asked to stop it again: if it were, this fault would make the answer 503.
    module_emulator.simulation.set_faults(
        [{"operation": "stop_recording", "kind": "error", "status": 500}]
    )
    try:
        again = [client.delete(location) for _ in range(2)]
    finally:
        module_emulator.simulation.set_faults([])

    assert [r.status_code for r in again] == [200, 200], again[0].text
    assert [r.json() for r in again] == [{"recordingId": recording_id, "state": "stopped"}] * 2
    view = client.get(location).json()
    assert view["live"] is None  # ACS answers 404 for a stopped recording
    assert view["registry"]["state"] == "stopped"
    assert _api_history(client, location, "stopped") == history  # no second "stopped" line


def _api_history(client: httpx.Client, location: str, last: str) -> list[dict[str, Any]] | None:
    history = client.get(location).json()["registry"]["stateHistory"]
    api = [entry for entry in history if entry["source"] == "api"]
    return api if api and api[-1]["state"] == last else None


def test_a_stop_of_an_unknown_recording_is_still_404(
    client: httpx.Client,
) -> None:
    assert client.delete("/api/recordings/never-started").status_code == 404


def test_pause_after_the_call_ended_is_409_and_marks_the_recording_stopped(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    location = client.post("/api/recordings", json=start_body(call)).json()["location"]
    module_emulator.simulation.hangup(call["serverCallId"])

    response = client.post(f"{location}/pause")
    assert response.status_code == 409
    assert "no longer has this recording" in response.json()["detail"]
    view = client.get(location).json()
    assert view["registry"]["state"] == "stopped"
    assert view["live"] is None


def test_pause_on_start_begins_inactive(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    started = client.post("/api/recordings", json=start_body(call, pauseOnStart=True))
    assert started.json()["state"] == "inactive"
    assert client.post(started.json()["location"] + "/resume").json()["state"] == "active"


def test_start_by_call_connection_id(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    started = client.post(
        "/api/recordings",
        json={"callConnectionId": call["callConnectionId"], "content": "audio", "format": "mp3"},
    )
    assert started.status_code == 201, started.text
    registry = client.get(started.json()["location"]).json()["registry"]
    assert registry["callConnectionId"] == call["callConnectionId"]
    assert registry["options"]["format"] == "mp3"
    assert acs_recordings_of(module_emulator, call["serverCallId"])


def test_start_on_an_unknown_call_is_404_naming_the_locator(client: httpx.Client) -> None:
    response = client.post("/api/recordings", json={"serverCallId": "bm8tc3VjaC1jYWxs"})
    assert response.status_code == 404
    assert response.json()["field"] == "serverCallId"


def test_second_start_on_a_recorded_call_is_409_naming_the_recording(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    first = client.post("/api/recordings", json=start_body(call))
    assert first.status_code == 201
    again = client.post("/api/recordings", json=start_body(call))
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    problem = again.json()
    assert problem["type"] == "urn:acs-call-recording:problem:call-already-recorded"
    assert problem["field"] == "serverCallId"
    assert problem["detail"].startswith(
        f"This call (serverCallId) is already being recorded by recording "
        f"{first.json()['recordingId']!r}; "
    )
    assert len(acs_recordings_of(module_emulator, call["serverCallId"])) == 1

    by_connection = client.post(
        "/api/recordings",
        json={"callConnectionId": call["callConnectionId"], "content": "audio", "format": "wav"},
    )
    assert by_connection.status_code == 409
    assert "is already being recorded; ACS records a call" in by_connection.json()["detail"]


def test_retried_start_with_the_same_idempotency_key_starts_once(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    headers = {"Idempotency-Key": f"start-{call['callId']}"}
    first = client.post("/api/recordings", json=start_body(call), headers=headers)
    retry = client.post("/api/recordings", json=start_body(call), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["recordingId"] == first.json()["recordingId"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(acs_recordings_of(module_emulator, call["serverCallId"])) == 1


def test_concurrent_starts_with_one_idempotency_key_start_once(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    headers = {"Idempotency-Key": f"race-{call['callId']}"}

    def start(_: int) -> httpx.Response:
        return client.post("/api/recordings", json=start_body(call), headers=headers)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(start, range(4)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["recordingId"] for answer in answers}) == 1
    assert len(acs_recordings_of(module_emulator, call["serverCallId"])) == 1


def test_idempotency_key_reused_with_another_body_is_422_and_starts_nothing(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    first_call, second_call = new_call(module_emulator), new_call(module_emulator)
    headers = {"Idempotency-Key": f"reuse-{first_call['callId']}"}
    assert client.post("/api/recordings", json=start_body(first_call), headers=headers).is_success
    reused = client.post("/api/recordings", json=start_body(second_call), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["field"] == "Idempotency-Key"
    assert acs_recordings_of(module_emulator, second_call["serverCallId"]) == []


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"x-functions-key": "wrong-key"}, {}),
        ({}, {"code": "wrong-key"}),
        ({"x-functions-key": ""}, {}),
    ],
    ids=["missing", "wrong-header", "wrong-code", "empty"],
)
def test_missing_or_wrong_function_key_is_401_and_calls_nothing(
    anonymous_client: httpx.Client,
    module_emulator: RunningEmulator,
    headers: dict[str, str],
    params: dict[str, str],
) -> None:
    call = new_call(module_emulator)
    for method, path, body in (
        ("POST", "/api/recordings", start_body(call)),
        ("GET", "/api/recordings/abc", None),
        ("POST", "/api/recordings/abc/pause", None),
        ("POST", "/api/recordings/abc/resume", None),
        ("DELETE", "/api/recordings/abc", None),
        ("GET", "/api/openapi.json", None),
    ):
        response = anonymous_client.request(method, path, json=body, headers=headers, params=params)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == PROBLEM
        assert "wrong-key" not in response.text
        assert FUNCTION_KEY not in response.text
    assert acs_recordings_of(module_emulator, call["serverCallId"]) == []


def test_function_key_is_also_accepted_as_code_query(
    anonymous_client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    response = anonymous_client.post(
        "/api/recordings", json=start_body(call), params={"code": FUNCTION_KEY}
    )
    assert response.status_code == 201


@pytest.fixture(scope="module", params=["+", "/", "="], ids=["plus", "slash", "equals"])
def suffixed_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    azurite: Azurite,
) -> Iterator[tuple[RunningEmulator, ApiServer, str]]:
    """An emulator whose recording ids end in one special character, and an API for it."""
    suffix = request.param
    emulator = start_emulator(
        tmp_path_factory.mktemp("emulator"), extra_args=["--recording-id-suffix", suffix * 2]
    )
    server = start_api(stack_environment(emulator, azurite, table=unique_table_name()))
    try:
        yield emulator, server, suffix
    finally:
        server.stop()
        emulator.stop()


def test_recording_ids_with_special_characters_round_trip_percent_encoded(
    suffixed_stack: tuple[RunningEmulator, ApiServer, str],
) -> None:
    emulator, server, suffix = suffixed_stack
    call = new_call(emulator)
    with httpx.Client(base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}) as http:
        started = http.post("/api/recordings", json=start_body(call))
        recording_id = started.json()["recordingId"]
        assert recording_id.endswith(suffix * 2)
        encoded = quote(recording_id, safe="")
        assert suffix not in encoded
        location = f"/api/recordings/{encoded}"
        assert started.json()["location"] == location

        assert http.get(location).json()["recordingId"] == recording_id
        assert http.post(f"{location}/pause").json()["state"] == "inactive"
        assert http.post(f"{location}/resume").json()["state"] == "active"
        assert http.delete(location).json()["state"] == "stopped"
        [at_acs] = acs_recordings_of(emulator, call["serverCallId"])
        assert at_acs["recordingId"] == recording_id
        assert at_acs["state"] == "stopped"


def test_answers_say_where_the_time_went(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = new_call(module_emulator)
    location = client.post("/api/recordings", json=start_body(call)).json()["location"]
    paused = client.post(f"{location}/pause")
    spans = server_timing.parse(paused.headers["server-timing"])
    # The pause waits for ACS only: the registry write is deferred and the check used this
    # process's copy of the entity.
    assert set(spans) == {"acs", "total"}
    assert 0 < spans["acs"] < spans["total"]
    read = client.get(location)
    spans = server_timing.parse(read.headers["server-timing"])
    assert set(spans) == {"acs", "registry", "total"}
    assert 0 < spans["registry"] < spans["total"]
    rejected = client.post("/api/recordings", json={})
    assert set(server_timing.parse(rejected.headers["server-timing"])) == {"total"}
