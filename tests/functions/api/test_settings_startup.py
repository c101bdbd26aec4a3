"""Start-up: settings are validated before the API listens, with every problem in one message;
``python -m scripts.serve_api`` is the one command that serves the API locally."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from local_runtime.processes import REPO_ROOT, Azurite, ManagedProcess, free_port, http_answers
from recording_pipeline.api.app import create_app, platform_base_url
from recording_pipeline.settings import Settings, SettingsError
from tests.functions.stack import FUNCTION_KEY, stack_environment, unique_table_name
from tests.support.emulator import RunningEmulator

ACCESS_KEY = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs="


def serve_api(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the serve command with exactly ``environ`` (nothing inherited but PATH)."""
    return subprocess.run(
        [sys.executable, "-m", "scripts.serve_api", *args],
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", ""), **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_empty_environment_lists_every_missing_setting_and_does_not_start() -> None:
    result = serve_api({})
    assert result.returncode == 2
    for name in (
        "ACS_ENDPOINT is required",
        "ACS_RESOURCE_ID is required",
        "ACS_IMMUTABLE_RESOURCE_ID is required",
        "exactly one of ARCHIVE_ACCOUNT_NAME",
    ):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_values_are_all_reported_without_secrets() -> None:
    result = serve_api(
        {
            "ACS_ENDPOINT": "http://acs.example.com",
            "ACS_RESOURCE_ID": "not-an-arm-id",
            "ACS_IMMUTABLE_RESOURCE_ID": "immutable",
            "ACS_ACCESS_KEY": ACCESS_KEY,
            "ARCHIVE_STORAGE_CONNECTION_STRING": "AccountKey=secret-connection-string",
            "REGISTRY_TABLE": "bad_table!",
            "LOCAL_FUNCTION_KEY": "function-key-secret",
        }
    )
    assert result.returncode == 2
    assert "ACS_ENDPOINT" in result.stderr
    assert "must use https" in result.stderr
    assert "ACS_RESOURCE_ID" in result.stderr
    assert "REGISTRY_TABLE" in result.stderr
    for secret in (ACCESS_KEY, "secret-connection-string", "function-key-secret"):
        assert secret not in result.stderr + result.stdout


def test_local_function_key_is_required_outside_azure_functions(
    module_emulator: RunningEmulator, azurite: Azurite
) -> None:
    environ = stack_environment(module_emulator, azurite, table=unique_table_name())
    del environ["LOCAL_FUNCTION_KEY"]
    with pytest.raises(SettingsError, match="LOCAL_FUNCTION_KEY is required"):
        create_app(Settings.from_env(environ))
    result = serve_api(environ)
    assert result.returncode == 2
    assert "LOCAL_FUNCTION_KEY is required" in result.stderr


def test_create_app_reads_and_validates_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACS_ENDPOINT", "ACS_RESOURCE_ID", "ACS_IMMUTABLE_RESOURCE_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError) as caught:
        create_app(host_checks_keys=True)
    assert len(caught.value.problems) >= 3


def test_platform_base_url_uses_the_app_host_name_only_in_azure() -> None:
    assert platform_base_url({"WEBSITE_HOSTNAME": "rec-app.azurewebsites.net"}) == (
        "https://rec-app.azurewebsites.net"
    )
    assert platform_base_url({}) is None


def test_serve_api_serves_the_api_against_emulator_and_azurite(
    module_emulator: RunningEmulator, azurite: Azurite
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        name="serve-api",
        argv=[sys.executable, "-m", "scripts.serve_api", "--port", str(port)],
        ready=lambda: http_answers(f"{base_url}/api/health"),
        env=stack_environment(module_emulator, azurite, table=unique_table_name()),
        startup_timeout=60,
    ).start()
    try:
        call = module_emulator.simulation.create_call(["8:acs:a"])
        with httpx.Client(base_url=base_url, headers={"x-functions-key": FUNCTION_KEY}) as http:
            assert http.get("/api/health").json() == {"status": "ok"}
            started = http.post(
                "/api/recordings", json={"serverCallId": call["serverCallId"], "content": "audio"}
            )
            assert started.status_code == 201, started.text
            assert http.get(started.json()["location"]).json()["registry"]["state"] == "active"
    finally:
        process.stop()
    assert not process.running
