"""ACS and registry failures over HTTP: 502 for this app's identity, 503 + Retry-After for
throttling and outages, never a 500, a stack trace or a secret, and nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_runtime.processes import Azurite, free_port
from tests.functions.stack import (
    FUNCTION_KEY,
    ApiServer,
    stack_environment,
    start_api,
    unique_table_name,
)
from tests.support.emulator import RunningEmulator, random_access_key

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def no_faults(module_emulator: RunningEmulator) -> Iterator[None]:
    yield
    module_emulator.simulation.set_faults([])


def started(client: httpx.Client, emulator: RunningEmulator) -> tuple[dict[str, Any], str]:
    call = emulator.simulation.create_call(["8:acs:a"])
    response = client.post(
        "/api/recordings", json={"serverCallId": call["serverCallId"], "content": "audio"}
    )
    assert response.status_code == 201, response.text
    return call, response.json()["location"]


def assert_safe_problem(response: httpx.Response, status: int, *secrets: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    for secret in secrets:
        assert secret not in response.text
    assert "Traceback" not in response.text
    return response.json()


def test_throttled_pause_is_503_with_retry_after_and_changes_nothing(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    _, location = started(client, module_emulator)
    module_emulator.simulation.set_faults(
        [{"operation": "pause_recording", "kind": "throttle", "retryAfter": 7, "times": 1}]
    )
    response = client.post(f"{location}/pause")
    problem = assert_safe_problem(response, 503)
    assert response.headers["retry-after"] == "7"
    assert problem["type"].endswith("upstream-unavailable")
    view = client.get(location).json()
    assert view["registry"]["state"] == "active"
    assert view["live"]["state"] == "active"
    assert client.post(f"{location}/pause").status_code == 200  # the retry succeeds


def test_acs_server_error_on_start_is_503_and_records_nothing(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:a"])
    module_emulator.simulation.set_faults(
        [{"operation": "start_recording", "kind": "error", "status": 500, "times": 1}]
    )
    response = client.post(
        "/api/recordings", json={"serverCallId": call["serverCallId"], "content": "audio"}
    )
    assert_safe_problem(response, 503)
    assert "retry-after" in response.headers
    recordings = module_emulator.simulation.objects()["recordings"]
    assert [r for r in recordings if r["serverCallId"] == call["serverCallId"]] == []


def test_wrong_acs_access_key_is_502_without_the_key(
    module_emulator: RunningEmulator, azurite: Azurite
) -> None:
    environ = stack_environment(module_emulator, azurite, table=unique_table_name())
    wrong_key = random_access_key()
    environ["ACS_ACCESS_KEY"] = wrong_key
    server = start_api(environ)
    try:
        call = module_emulator.simulation.create_call(["8:acs:a"])
        with httpx.Client(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}
        ) as http:
            response = http.post("/api/recordings", json={"serverCallId": call["serverCallId"]})
        problem = assert_safe_problem(response, 502, wrong_key, module_emulator.access_key)
        assert problem["type"].endswith("upstream-configuration")
    finally:
        server.stop()


def test_unreachable_acs_is_503(module_emulator: RunningEmulator, azurite: Azurite) -> None:
    environ = stack_environment(module_emulator, azurite, table=unique_table_name())
    environ["ACS_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    server = start_api(environ)
    try:
        with httpx.Client(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}
        ) as http:
            response = http.post("/api/recordings", json={"serverCallId": "c2VydmVy"})
            assert_safe_problem(response, 503)
            assert response.headers["retry-after"] == "5"
            assert http.get("/api/recordings/unknown").status_code == 404
    finally:
        server.stop()


def test_unreachable_registry_is_503(module_emulator: RunningEmulator, tmp_path: Path) -> None:
    private = Azurite(location=tmp_path / "azurite").start()
    server: ApiServer | None = None
    try:
        server = start_api(stack_environment(module_emulator, private, table=unique_table_name()))
        private.stop()
        with httpx.Client(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=60
        ) as http:
            response = http.get("/api/recordings/some-id")
            problem = assert_safe_problem(response, 503, private.connection_string)
            assert problem["type"].endswith("registry-unavailable")
            assert response.headers["retry-after"] == "5"
    finally:
        if server is not None:
            server.stop()
        private.stop()
