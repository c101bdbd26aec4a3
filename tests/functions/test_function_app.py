"""``function_app.py`` without the Functions host: its functions, their bindings, and requests
handed to the same ASGI app through the Functions adapter (which decodes the path itself)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from local_runtime.processes import Azurite
from local_runtime.token_issuer import TokenIssuer
from tests.functions.stack import entra_environment, stack_environment, unique_table_name
from tests.support.emulator import RunningEmulator, start_emulator


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """Recording ids end in ``+/=`` here, so the adapter's path decoding is exercised."""
    running = start_emulator(
        tmp_path_factory.mktemp("emulator"), extra_args=["--recording-id-suffix", "+/="]
    )
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def imported_function_app(environ: dict[str, str]) -> Iterator[ModuleType]:
    """A fresh import of ``function_app`` with exactly these settings (validated at import)."""
    environ = {name: value for name, value in environ.items() if name != "LOCAL_FUNCTION_KEY"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        # The host checks keys; the app must not need one.
        for name in ("LOCAL_FUNCTION_KEY", "WEBSITE_HOSTNAME", "API_AUTH"):
            if name not in environ:
                patch.delenv(name, raising=False)
        sys.modules.pop("function_app", None)
        module = importlib.import_module("function_app")
        yield module
        if module.app.startup_task_done:
            # Shut the ASGI app down here, outside any event loop: the app's finalizer would
            # otherwise try it during garbage collection, possibly inside a running loop.
            asyncio.run(module.app.middleware.notify_shutdown())
            module.app.startup_task_done = False
        sys.modules.pop("function_app", None)


@pytest.fixture(scope="module")
def function_app(module_emulator: RunningEmulator, azurite: Azurite) -> Iterator[ModuleType]:
    """``function_app`` with the local settings and the default ``API_AUTH`` (functionKey)."""
    environ = stack_environment(module_emulator, azurite, table=unique_table_name())
    with imported_function_app(environ) as module:
        yield module


@pytest.fixture(scope="module")
def functions(function_app: ModuleType) -> dict[str, Any]:
    """``get_functions()`` may run once per app instance, so it runs once per module."""
    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def bindings_of(function: Any) -> list[dict[str, Any]]:
    return json.loads(function.get_function_json())["bindings"]


def http_request(method: str, path: str, body: Any = None, **headers: str) -> func.HttpRequest:
    return func.HttpRequest(
        method=method,
        url=f"https://rec-app.azurewebsites.net{path}",
        headers={"content-type": "application/json", **headers},
        body=b"" if body is None else json.dumps(body).encode(),
    )


async def invoke(function: Any, request: func.HttpRequest) -> func.HttpResponse:
    return await function.get_user_function()(request, None)


def test_app_registers_the_api_callbacks_health_queue_trigger_and_reconciler_timer(
    functions: dict[str, Any],
) -> None:
    assert set(functions) == {
        "http_app_func",
        "callbacks",
        "health",
        "archive_recording_event",
        "reconcile_archive",
    }


def test_the_server_error_alert_watches_exactly_the_http_functions(
    functions: dict[str, Any],
) -> None:
    from infra import monitoring

    http = {name for name, fn in functions.items() if bindings_of(fn)[0]["type"] == "httpTrigger"}
    assert http == set(monitoring.API_FUNCTION_NAMES)


def test_api_requires_function_keys_and_callbacks_and_health_are_anonymous(
    functions: dict[str, Any],
) -> None:
    api = bindings_of(functions["http_app_func"])[0]
    assert (api["type"], api["authLevel"], api["route"]) == ("httpTrigger", "FUNCTION", "/{*route}")
    callbacks = bindings_of(functions["callbacks"])[0]
    assert (callbacks["authLevel"], callbacks["route"], callbacks["methods"]) == (
        "ANONYMOUS",
        "callbacks",
        ["POST"],
    )
    health = bindings_of(functions["health"])[0]
    assert (health["authLevel"], health["route"], health["methods"]) == (
        "ANONYMOUS",
        "health",
        ["GET"],
    )


def test_anonymous_routes_sort_before_the_catch_all(functions: dict[str, Any]) -> None:
    """The host tries overlapping routes in function-name order; the catch-all must come last."""
    http_functions = sorted(
        name for name, fn in functions.items() if bindings_of(fn)[0]["type"] == "httpTrigger"
    )
    assert http_functions[-1] == "http_app_func"


def test_queue_trigger_uses_the_events_queue_setting_and_identity_connection(
    functions: dict[str, Any],
) -> None:
    [trigger] = bindings_of(functions["archive_recording_event"])
    assert trigger == {
        "direction": "IN",
        "type": "queueTrigger",
        "name": "message",
        "queueName": "%EVENTS_QUEUE%",
        "connection": "RecordingQueue",
    }


def test_the_reconciler_timer_reads_its_schedule_from_an_app_setting(
    functions: dict[str, Any],
) -> None:
    """The host resolves ``%NAME%`` in a timer schedule from the app settings, so the Pulumi
    program sets the schedule (``RECONCILE_SCHEDULE``) without a code change."""
    [trigger] = bindings_of(functions["reconcile_archive"])
    assert trigger == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "%RECONCILE_SCHEDULE%",
        "runOnStartup": False,
    }


@pytest.mark.asyncio
async def test_health_function_answers_through_the_api(functions: dict[str, Any]) -> None:
    response = await invoke(functions["health"], http_request("GET", "/api/health"))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}


@pytest.mark.asyncio
async def test_callbacks_function_checks_the_token(functions: dict[str, Any]) -> None:
    response = await invoke(functions["callbacks"], http_request("POST", "/api/callbacks", []))
    assert response.status_code == 401
    assert "Bearer" in json.loads(response.get_body())["detail"]


@pytest.mark.asyncio
async def test_percent_encoded_ids_work_through_the_functions_adapter(
    functions: dict[str, Any], module_emulator: RunningEmulator
) -> None:
    api = functions["http_app_func"]
    call = module_emulator.simulation.create_call(["8:acs:a"])
    started = await invoke(
        api, http_request("POST", "/api/recordings", {"serverCallId": call["serverCallId"]})
    )
    assert started.status_code == 201, started.get_body()
    recording_id = json.loads(started.get_body())["recordingId"]
    assert recording_id.endswith("+/=")
    location = f"/api/recordings/{quote(recording_id, safe='')}"

    view = await invoke(api, http_request("GET", location))
    assert json.loads(view.get_body())["recordingId"] == recording_id
    paused = await invoke(api, http_request("POST", f"{location}/pause"))
    assert json.loads(paused.get_body()) == {"recordingId": recording_id, "state": "inactive"}
    stopped = await invoke(api, http_request("DELETE", location))
    assert json.loads(stopped.get_body())["state"] == "stopped"


def test_queue_trigger_hands_the_message_to_the_archiver(
    functions: dict[str, Any], function_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[bytes, dict[str, Any]]] = []
    monkeypatch.setattr(
        function_app,
        "handle_event_message",
        lambda body, **options: received.append((body, options)),
    )
    message = QueueMessage(id="message-1", body=b'{"id": "event-1"}', dequeue_count=3)
    functions["archive_recording_event"].get_user_function()(message)
    assert received == [(b'{"id": "event-1"}', {"dequeue_count": 3, "message_id": "message-1"})]


@pytest.fixture(scope="module")
def token_issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as running:
        yield running


@pytest.mark.parametrize(("mode", "level"), [("entraId", "ANONYMOUS"), ("both", "FUNCTION")])
def test_the_catch_all_auth_level_follows_api_auth(
    module_emulator: RunningEmulator,
    azurite: Azurite,
    token_issuer: TokenIssuer,
    mode: str,
    level: str,
) -> None:
    """``entraId``: no host key (the app checks the token); ``both``: the host checks the key
    and the app the token. Callbacks and health stay anonymous in every mode."""
    environ = {
        **stack_environment(module_emulator, azurite, table=unique_table_name()),
        **entra_environment(token_issuer, mode),
    }
    with imported_function_app(environ) as module:
        functions = {fn.get_function_name(): fn for fn in module.app.get_functions()}
        levels = {name: bindings_of(fn)[0].get("authLevel") for name, fn in functions.items()}
        assert levels["http_app_func"] == level
        assert (levels["callbacks"], levels["health"]) == ("ANONYMOUS", "ANONYMOUS")
        api = functions["http_app_func"]
        anonymous = asyncio.run(invoke(api, http_request("GET", "/api/recordings")))
        signed_in = asyncio.run(
            invoke(
                api,
                http_request(
                    "GET", "/api/recordings", authorization=f"Bearer {token_issuer.mint()}"
                ),
            )
        )
    assert anonymous.status_code == 401
    assert json.loads(anonymous.get_body())["type"].endswith(":token-missing")
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert signed_in.status_code == 200, signed_in.get_body()


@pytest.mark.asyncio
async def test_url_bytes_that_are_not_utf8_are_400_through_the_functions_adapter(
    functions: dict[str, Any],
) -> None:
    """The adapter decodes the path itself (strictly: bytes that are not UTF-8 raise there) and
    hands the app the decoded path as ``raw_path``; the query stays encoded."""
    api = functions["http_app_func"]
    for path, field in (
        ("/api/recordings/%ED%A0%80", "recordingId"),
        ("/api/recordings/rec-1/archive/files/%C0%AF", "fileName"),
        ("/api/recordings?serverCallId=%FF", "serverCallId"),
    ):
        response = await invoke(api, http_request("GET", path))
        assert response.status_code == 400, (path, response.get_body())
        assert json.loads(response.get_body())["field"] == field
        assert response.mimetype == "application/problem+json"

    # The id "a%FFb" (a literal percent sign): looked up (the registry only), not refused.
    literal = await invoke(api, http_request("GET", "/api/recordings/a%25FFb/archive/manifest"))
    assert literal.status_code == 404, literal.get_body()
    assert "a%FFb" in json.loads(literal.get_body())["detail"]
