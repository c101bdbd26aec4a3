"""scripts/smoke_test.py against real HTTP servers on 127.0.0.1 and a real Azurite queue.

A stub API (stdlib HTTP server) lets each test choose what the API answers, so every check is
seen both passing and failing. The last tests run the smoke test against the real recording API
(scripts.serve_api, settings pointed at Azurite) and against the whole local stack (`make up`),
the way `deploy.yml` runs it against Azure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from azure.storage.queue import QueueServiceClient

from local_runtime.processes import (
    AZURITE_KEY,
    REPO_ROOT,
    Azurite,
    ManagedProcess,
    free_port,
    http_answers,
    python_module_argv,
)
from local_runtime.stack import EVENTS_QUEUE as LOCAL_EVENTS_QUEUE
from local_runtime.stack import running_stack
from scripts import smoke_test
from tests.support.http_server import LocalHttpServer


@dataclass
class StubApi:
    """Answers GETs with scripted statuses per path (the last status repeats)."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def answer(self, path: str) -> int:
        queue = self.statuses.get(path, [404])
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def stub_api() -> Iterator[StubApi]:
    stub = StubApi(
        statuses={"/api/health": [200], "/api/recordings/does-not-exist": [401]},
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.seen.append((self.path, dict(self.headers)))
            status = stub.answer(self.path)
            body = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    with LocalHttpServer(Handler) as server:
        stub.port = server.port
        yield stub


@pytest.fixture
def events_queue(azurite: Azurite) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:12]}"
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    service.create_queue(name)
    try:
        yield name
    finally:
        service.delete_queue(name)


def write_outputs(tmp_path: Path, **outputs: object) -> Path:
    path = tmp_path / "stack-outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = smoke_test.main(["--health-wait", "0", "--timeout", "5", *argv])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_all_checks_pass_against_a_healthy_stack(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stub_api: StubApi,
    azurite: Azurite,
    events_queue: str,
) -> None:
    outputs = write_outputs(tmp_path, API_BASE_URL=stub_api.base_url, EVENTS_QUEUE=events_queue)
    code, lines, err = run_main(
        capsys,
        "--outputs-json",
        str(outputs),
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 0, (lines, err)
    assert [line.split(" ", 2)[:2] for line in lines[:3]] == [
        ["PASS", "health:"],
        ["PASS", "auth:"],
        ["PASS", "queue:"],
    ]
    assert lines[3] == "smoke test passed: 3 checks"
    assert [path for path, _ in stub_api.seen] == [
        "/api/health",
        "/api/recordings/does-not-exist",
    ]
    headers = {k.lower() for _, sent in stub_api.seen for k in sent}
    assert "x-functions-key" not in headers


def test_connection_string_is_never_printed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stub_api: StubApi,
    azurite: Azurite,
) -> None:
    stub_api.statuses["/api/health"] = [500]
    code, lines, err = run_main(
        capsys,
        "--api-base-url",
        stub_api.base_url,
        "--events-queue",
        "no-such-queue",
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 1
    assert AZURITE_KEY not in "\n".join(lines) + err
    target = smoke_test.SmokeTarget("http://x", "q", storage_connection_string="AccountKey=k")
    assert "AccountKey" not in repr(target)


@pytest.mark.parametrize(
    ("route", "status", "check", "expected"),
    [
        ("/api/health", 500, "health", "answered 500, expected 200"),
        ("/api/health", 404, "health", "answered 404, expected 200"),
        ("/api/recordings/does-not-exist", 200, "auth", "without a key answered 200, expected 401"),
        ("/api/recordings/does-not-exist", 404, "auth", "without a key answered 404, expected 401"),
    ],
)
def test_a_wrong_answer_fails_its_check_with_one_line(
    capsys: pytest.CaptureFixture[str],
    stub_api: StubApi,
    azurite: Azurite,
    events_queue: str,
    route: str,
    status: int,
    check: str,
    expected: str,
) -> None:
    stub_api.statuses[route] = [status]
    code, lines, err = run_main(
        capsys,
        "--api-base-url",
        stub_api.base_url,
        "--events-queue",
        events_queue,
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1
    assert failed[0].startswith(f"FAIL {check}: GET http://127.0.0.1:{stub_api.port}{route}")
    assert failed[0].endswith(expected)
    assert err.strip() == f"smoke test FAILED: {check}"


def test_missing_queue_fails_the_queue_check(
    capsys: pytest.CaptureFixture[str], stub_api: StubApi, azurite: Azurite
) -> None:
    code, lines, _ = run_main(
        capsys,
        "--api-base-url",
        stub_api.base_url,
        "--events-queue",
        "recording-events-missing",
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 1
    assert lines[2] == (
        "FAIL queue: queue 'recording-events-missing' not found in the storage account of the "
        "connection string"
    )


def test_unreachable_api_fails_both_http_checks(
    capsys: pytest.CaptureFixture[str], azurite: Azurite, events_queue: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, lines, _ = run_main(
        capsys,
        "--api-base-url",
        dead,
        "--events-queue",
        events_queue,
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 1
    assert lines[0].startswith(f"FAIL health: GET {dead}/api/health failed: ConnectError")
    assert lines[1].startswith("FAIL auth:")
    assert lines[2].startswith("PASS queue:")


def test_health_is_retried_while_the_app_cold_starts(
    stub_api: StubApi, azurite: Azurite, events_queue: str
) -> None:
    stub_api.statuses["/api/health"] = [503, 503, 200]
    target = smoke_test.SmokeTarget(
        stub_api.base_url, events_queue, storage_connection_string=azurite.connection_string
    )
    pauses: list[float] = []
    results = smoke_test.run_checks(target, health_wait_seconds=30, sleep=pauses.append)
    assert [r.passed for r in results] == [True, True, True]
    assert len(pauses) == 2
    assert [p for p, _ in stub_api.seen].count("/api/health") == 3


# --- inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outputs", "argv", "message"),
    [
        ({}, [], "--api-base-url (or output API_BASE_URL) is required"),
        (
            {"API_BASE_URL": "http://h/api"},
            [],
            "--events-queue (or output EVENTS_QUEUE) is required",
        ),
        (
            {"API_BASE_URL": "ftp://h", "EVENTS_QUEUE": "q-1", "INGRESS_ACCOUNT_NAME": "acct1"},
            [],
            "API base URL ('ftp://h') must be an http(s) URL with a host",
        ),
        (
            {"API_BASE_URL": "http://h", "EVENTS_QUEUE": "Bad_Queue"},
            [],
            "events queue ('Bad_Queue') must be a storage queue name",
        ),
        (
            {"API_BASE_URL": "http://h", "EVENTS_QUEUE": "recording-events"},
            [],
            "--queue-service-url, --storage-connection-string or output INGRESS_ACCOUNT_NAME",
        ),
        (
            {
                "API_BASE_URL": "http://h",
                "EVENTS_QUEUE": "recording-events",
                "INGRESS_ACCOUNT_NAME": "Has-Dash",
            },
            [],
            "output INGRESS_ACCOUNT_NAME ('Has-Dash') must be 3-24 lowercase letters or digits",
        ),
        (
            {"API_BASE_URL": 42, "EVENTS_QUEUE": "recording-events"},
            [],
            "output API_BASE_URL (42) must be a non-empty string",
        ),
    ],
)
def test_unusable_inputs_exit_2_naming_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    outputs: dict[str, object],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    code, lines, err = run_main(
        capsys, "--outputs-json", str(write_outputs(tmp_path, **outputs)), *argv
    )
    assert code == 2
    assert lines == []
    assert message in err


def test_outputs_file_that_is_not_json_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "outputs.json"
    broken.write_text("Current stack outputs (3):")
    code, _, err = run_main(capsys, "--outputs-json", str(broken))
    assert code == 2
    assert f"--outputs-json: {broken} is not JSON" in err


def test_azure_outputs_resolve_to_the_ingress_queue_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `pulumi stack output --json` of the real program gives (names as in infra/)."""
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    args = smoke_test.parse_args([])
    target = smoke_test.resolve_target(
        args,
        {
            "API_BASE_URL": "https://acsrec-func1234.azurewebsites.net/api",
            "EVENTS_QUEUE": "recording-events",
            "ARCHIVE_ACCOUNT_NAME": "acsrecarch4fec68de",
            "INGRESS_ACCOUNT_NAME": "acsrecingr0b7c1d2e",
            "FUNCTION_APP_NAME": "acsrec-func1234",
        },
    )
    assert target == smoke_test.SmokeTarget(
        api_base_url="https://acsrec-func1234.azurewebsites.net/api",
        events_queue="recording-events",
        queue_service_url="https://acsrecingr0b7c1d2e.queue.core.windows.net",
    )
    assert smoke_test.api_url(target.api_base_url, "health") == (
        "https://acsrec-func1234.azurewebsites.net/api/health"
    )
    assert smoke_test.api_url("https://host/", "health") == "https://host/api/health"


def test_flags_override_outputs() -> None:
    args = smoke_test.parse_args(
        ["--api-base-url", "http://127.0.0.1:1", "--queue-service-url", "http://127.0.0.1:2/acct"]
    )
    target = smoke_test.resolve_target(
        args, {"API_BASE_URL": "https://elsewhere", "EVENTS_QUEUE": "recording-events"}
    )
    assert target.api_base_url == "http://127.0.0.1:1"
    assert target.queue_service_url == "http://127.0.0.1:2/acct"


def test_command_line_entry_point_exit_codes(
    tmp_path: Path, stub_api: StubApi, azurite: Azurite, events_queue: str
) -> None:
    """`python -m scripts.smoke_test` as deploy.yml calls it: 0 when healthy, 1 when not."""
    outputs = write_outputs(tmp_path, API_BASE_URL=stub_api.base_url, EVENTS_QUEUE=events_queue)
    env_args = ["--outputs-json", str(outputs), "--health-wait", "0"]
    env = {"ARCHIVE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    ok = _run_cli(env_args, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    stub_api.statuses["/api/recordings/does-not-exist"] = [200]
    failed = _run_cli(env_args, env)
    assert failed.returncode == 1
    assert "FAIL auth:" in failed.stdout


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.smoke_test", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- against the real recording API -------------------------------------------------------------

LOCAL_ACS_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.Communication/communicationServices/acs-smoke"
)


@dataclass
class RealApi:
    process: ManagedProcess
    port: int
    function_key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


@pytest.fixture(scope="module")
def real_api(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealApi]:
    """The API as the local stack serves it (scripts.serve_api: FastAPI under uvicorn), with
    Azurite as its storage.

    Nothing listens on ACS_ENDPOINT: health and the key check must not need ACS.
    """
    port = free_port()
    function_key = uuid.uuid4().hex
    settings = {
        "ACS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "ACS_ACCESS_KEY": "c21va2UtdGVzdC1ub3QtYS1yZWFsLWtleS0wMDAwMDA=",
        "ACS_RESOURCE_ID": LOCAL_ACS_RESOURCE_ID,
        "ACS_IMMUTABLE_RESOURCE_ID": str(uuid.uuid4()),
        "ARCHIVE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "REGISTRY_TABLE": f"smoke{uuid.uuid4().hex[:12]}",
        "LOCAL_FUNCTION_KEY": function_key,
    }
    process = ManagedProcess(
        name="smoke-api",
        argv=python_module_argv(
            "scripts.serve_api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ),
        ready=lambda: http_answers(f"http://127.0.0.1:{port}/api/health"),
        env=settings,
        log_path=tmp_path_factory.mktemp("smoke-api") / "api.log",
    )
    process.start()
    try:
        yield RealApi(process, port, function_key)
    finally:
        process.stop()


def test_smoke_test_passes_against_the_real_api(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    real_api: RealApi,
    azurite: Azurite,
    events_queue: str,
) -> None:
    outputs = write_outputs(tmp_path, API_BASE_URL=real_api.base_url, EVENTS_QUEUE=events_queue)
    code, lines, err = run_main(
        capsys,
        "--outputs-json",
        str(outputs),
        "--storage-connection-string",
        azurite.connection_string,
    )
    assert code == 0, (lines, err, real_api.process.log_tail())
    assert lines[1] == (
        f"PASS auth: GET http://127.0.0.1:{real_api.port}/api/recordings/does-not-exist "
        "without a key answered 401"
    )


def test_real_api_refusal_is_about_the_key(real_api: RealApi) -> None:
    """The 401 the smoke test expects must come from the missing key, not from the route."""
    url = smoke_test.api_url(real_api.base_url, smoke_test.PROTECTED_PATH)
    with httpx.Client(timeout=10) as client:
        refused = client.get(url)
        admitted = client.get(url, headers={"x-functions-key": real_api.function_key})
    assert refused.status_code == 401
    assert admitted.status_code == 404, admitted.text


# --- against the whole local stack --------------------------------------------------------------


@pytest.mark.slow
def test_smoke_test_passes_against_the_local_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make up`'s stack (Azurite, emulator, API, worker) checked exactly like a deployed one."""
    with running_stack(tmp_path / "stack") as stack:
        assert stack.azurite is not None
        outputs = write_outputs(
            tmp_path, API_BASE_URL=f"{stack.api_url}/api", EVENTS_QUEUE=LOCAL_EVENTS_QUEUE
        )
        code, lines, err = run_main(
            capsys,
            "--outputs-json",
            str(outputs),
            "--storage-connection-string",
            stack.azurite.connection_string,
        )
    assert code == 0, (lines, err)
    assert [line.split(":", 1)[0] for line in lines[:3]] == [
        "PASS health",
        "PASS auth",
        "PASS queue",
    ]
