"""deploy.yml feeds `pulumi stack output --json` to the smoke test: the names it reads must be the
names the program exports (run under mocks by tests/infra/harness.py), for a public and for a
private stack."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from scripts import smoke_test
from tests.infra.harness import run_program_with_outputs
from tests.support.http_server import LocalHttpServer


def test_smoke_test_understands_the_program_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    outputs = run_program_with_outputs().outputs
    target = smoke_test.resolve_target(smoke_test.parse_args([]), outputs)
    assert target.api_base_url == outputs["API_BASE_URL"].rstrip("/")
    assert target.api_base_url.startswith("https://")
    assert target.events_queue == outputs["EVENTS_QUEUE"]
    account = outputs["INGRESS_ACCOUNT_NAME"]
    assert account != outputs["ARCHIVE_ACCOUNT_NAME"]
    assert target.queue_service_url == f"https://{account}.queue.core.windows.net"
    assert target.storage_connection_string is None
    assert target.queue_skip_reason is None
    health = smoke_test.api_url(target.api_base_url, "health")
    assert health.endswith(".azurewebsites.net/api/health")


@pytest.fixture(scope="module")
def private_outputs() -> dict[str, object]:
    return run_program_with_outputs({"network": "private"}).outputs


def test_a_private_stack_skips_the_queue_check_outside_the_vnet(
    monkeypatch: pytest.MonkeyPatch, private_outputs: dict[str, object]
) -> None:
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    target = smoke_test.resolve_target(smoke_test.parse_args([]), private_outputs)
    assert target.queue_service_url is None
    assert target.queue_skip_reason == smoke_test.PRIVATE_QUEUE_SKIP
    # Inside the VNet the caller says where the queue is, and it is checked.
    inside = smoke_test.resolve_target(
        smoke_test.parse_args(["--queue-service-url", "https://acct.queue.core.windows.net"]),
        private_outputs,
    )
    assert inside.queue_skip_reason is None
    assert inside.queue_service_url == "https://acct.queue.core.windows.net"


def test_an_unknown_network_mode_is_unusable_input() -> None:
    with pytest.raises(smoke_test.SmokeConfigError, match=r"network mode \('hybrid'\)"):
        smoke_test.resolve_target(
            smoke_test.parse_args([]),
            {"API_BASE_URL": "https://h/api", "EVENTS_QUEUE": "q-1", "NETWORK_MODE": "hybrid"},
        )


class _HealthyApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/api/health" else 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_private_stack_smoke_test_passes_with_a_skip_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    private_outputs: dict[str, object],
) -> None:
    """As deploy.yml runs it: the API checks run, the queue check is one SKIP line, exit 0."""
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    with LocalHttpServer(_HealthyApi) as api:
        outputs = {**private_outputs, "API_BASE_URL": f"{api.base_url}/api"}
        path = tmp_path / "stack-outputs.json"
        path.write_text(json.dumps(outputs))
        code = smoke_test.main(["--outputs-json", str(path), "--health-wait", "0"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert [line.split(":", 1)[0] for line in lines[:3]] == [
        "PASS health",
        "PASS auth",
        "SKIP queue",
    ]
    assert lines[2] == f"SKIP queue: {smoke_test.PRIVATE_QUEUE_SKIP}"
    assert lines[3] == "smoke test passed: 2 checks, 1 skipped"
