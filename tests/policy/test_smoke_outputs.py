"""deploy.yml feeds `pulumi stack output --json` to the smoke test: the names it reads must be the
names the program exports (run under mocks by tests/infra/harness.py)."""

from __future__ import annotations

import pytest

from scripts import smoke_test
from tests.infra.harness import run_program_with_outputs


def test_smoke_test_understands_the_program_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_STORAGE_CONNECTION_STRING", raising=False)
    outputs = run_program_with_outputs().outputs
    target = smoke_test.resolve_target(smoke_test.parse_args([]), outputs)
    assert target.api_base_url == outputs["API_BASE_URL"].rstrip("/")
    assert target.api_base_url.startswith("https://")
    assert target.events_queue == outputs["EVENTS_QUEUE"]
    account = outputs["ARCHIVE_ACCOUNT_NAME"]
    assert target.queue_service_url == f"https://{account}.queue.core.windows.net"
    assert target.storage_connection_string is None
    health = smoke_test.api_url(target.api_base_url, "health")
    assert health.endswith(".azurewebsites.net/api/health")
