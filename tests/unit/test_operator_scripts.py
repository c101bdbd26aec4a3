"""The operator tools end with one message listing the missing settings, never a traceback:
a malformed connection string is one line naming the option or setting and its rule, and a
reader that goes away (``| head -1``) ends them quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from hypothesis import given
from hypothesis import strategies as st

from local_runtime.processes import REPO_ROOT
from recording_pipeline.settings import (
    AZURE_SETTING_NAMES,
    LOCAL_ONLY_SETTING_NAMES,
    check_storage_connection_string,
)
from recordings_cli.closed_stdout import EXIT_READER_GONE
from scripts import export_participant, reconcile, replay_poison, smoke_test
from scripts.operator_settings import EXIT_SETTINGS
from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING
from tests.support.http_server import LocalHttpServer


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*AZURE_SETTING_NAMES, *LOCAL_ONLY_SETTING_NAMES):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_settings")
@pytest.mark.parametrize(
    ("tool", "main", "argv"),
    [
        ("replay_poison", replay_poison.main, ["--dry-run"]),
        ("export_participant", export_participant.main, ["list", "--participant-id", "8:acs:a"]),
    ],
)
def test_missing_settings_are_listed_in_one_message(
    tool: str, main: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(main)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{tool}: the Function App's settings are missing or invalid:\n")
    for name in ("ACS_ENDPOINT", "ACS_RESOURCE_ID", "ACS_IMMUTABLE_RESOURCE_ID"):
        assert f"  - {name} is required\n" in err
    assert "ARCHIVE_STORAGE_CONNECTION_STRING" in err
    assert "source .local/up.env" in err
    assert "Traceback" not in err


# --- connection strings: one line naming the option or setting and the rule, exit 2 ----------

ACS_SETTINGS = {
    "ACS_ENDPOINT": "http://127.0.0.1:1",
    "ACS_RESOURCE_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/r/"
    "providers/Microsoft.Communication/communicationServices/acs",
    "ACS_IMMUTABLE_RESOURCE_ID": "00000000-0000-4000-8000-000000000001",
}
#: Malformed in each way a person gets one wrong; each holds a tell-tale that must not be echoed.
MALFORMED = {
    "no pairs": "s3cr3t-tell-tale",
    "no key": "AccountName=devstoreaccount1;BlobEndpoint=http://127.0.0.1:1/s3cr3t",
    "key not base64": "AccountName=devstoreaccount1;AccountKey=s3cr3t-tell-tale!",
    "endpoint not a URL": "AccountName=a;AccountKey=czNjcjN0;QueueEndpoint=s3cr3t-tell-tale",
}


@pytest.fixture
def acs_settings(no_settings: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ACS_SETTINGS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("acs_settings")
@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(
    ("tool", "main", "argv"),
    [
        ("replay_poison", replay_poison.main, ["--dry-run"]),
        ("export_participant", export_participant.main, ["list", "--participant-id", "8:acs:a"]),
        ("reconcile", reconcile.main, ["--dry-run"]),
    ],
)
def test_a_malformed_connection_string_option_is_one_line_and_exit_two(
    tool: str,
    main: Callable[[list[str]], int],
    argv: list[str],
    malformed: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*argv, "--connection-string", malformed]) == EXIT_SETTINGS

    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"{tool}: --connection-string must ")
    assert "tell-tale" not in err


@pytest.mark.usefixtures("acs_settings")
@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_connection_string_setting_is_named_with_its_rule(
    malformed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARCHIVE_STORAGE_CONNECTION_STRING", malformed)

    assert replay_poison.main(["--dry-run"]) == EXIT_SETTINGS

    err = capsys.readouterr().err
    assert "  - ARCHIVE_STORAGE_CONNECTION_STRING (***) must " in err
    assert "tell-tale" not in err and "Traceback" not in err


@pytest.mark.parametrize("malformed", MALFORMED.values(), ids=MALFORMED.keys())
def test_the_smoke_test_names_its_connection_string_option(
    malformed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--api-base-url", "https://app.example.net", "--events-queue", "recording-events"]

    assert smoke_test.main([*argv, "--storage-connection-string", malformed]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("smoke test: --storage-connection-string must ")
    assert "tell-tale" not in line


def test_the_archive_worker_refuses_a_malformed_connection_string_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.archive_worker", "--connection-string", "s3cr3t"],
        cwd=REPO_ROOT,
        env={
            **_environment_without_settings(),
            **ACS_SETTINGS,
            "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.endswith(
        "archive worker cannot start: --connection-string must be Name=value "
        "pairs (neither empty) separated by ';', as Azurite or `az storage account "
        "show-connection-string` gives it"
    )
    assert "s3cr3t" not in result.stderr


def _environment_without_settings() -> dict[str, str]:
    names = {*AZURE_SETTING_NAMES, *LOCAL_ONLY_SETTING_NAMES, "RecordingQueue"}
    return {name: value for name, value in os.environ.items() if name not in names}


_PAIR_NAMES = st.sampled_from(
    [
        "AccountName",
        "AccountKey",
        "SharedAccessSignature",
        "BlobEndpoint",
        "QueueEndpoint",
        "TableEndpoint",
        "DefaultEndpointsProtocol",
        "EndpointSuffix",
        "UseDevelopmentStorage",
        "",
    ]
)
_PAIR_VALUES = st.sampled_from(
    [
        "devstoreaccount1",
        "czNjcjN0",
        "not base64!",
        "http://127.0.0.1:10000/devstoreaccount1",
        "https",
        "core.windows.net",
        "true",
        "sv=2024&sig=x",
        "",
    ]
)


@given(
    pairs=st.lists(
        st.tuples(_PAIR_NAMES, _PAIR_VALUES, st.sampled_from(["=", "", "=="])), max_size=6
    ),
    trailing=st.sampled_from(["", ";", ";;"]),
)
def test_a_connection_string_the_check_accepts_builds_every_storage_client(
    pairs: list[tuple[str, str, str]], trailing: str
) -> None:
    raw = ";".join(f"{name}{sep}{value}" for name, value, sep in pairs) + trailing
    try:
        check_storage_connection_string(raw)
    except ValueError as error:
        assert str(error).startswith("must ")
        return
    for client in (BlobServiceClient, QueueServiceClient, TableServiceClient):
        client.from_connection_string(raw)  # raises on a string the SDK cannot parse


# --- a reader that goes away (`| head -1`) ends the command quietly ----------------------------


def run_with_reader_gone(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m argv`` with stdout a pipe whose reader has gone: ``(exit code, stderr)``."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # `head` has read what it wanted and gone
    try:
        result = subprocess.run(
            [sys.executable, "-m", *argv],
            cwd=REPO_ROOT,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


class _RecordingsPage(BaseHTTPRequestHandler):
    """The API's list route, answering one page of recordings."""

    def do_GET(self) -> None:
        items = [
            {"recordingId": f"rec-{n}", "state": "stopped", "createdAt": "2026-12-03T10:00:00Z"}
            for n in range(3)
        ]
        body = json.dumps({"items": items, "continuationToken": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def recordings_api() -> Iterator[str]:
    with LocalHttpServer(_RecordingsPage) as server:
        yield f"{server.base_url}/api"


@pytest.mark.parametrize("module", ["recordings_cli", "scripts.recordings"])
def test_recordings_list_into_a_closed_pipe_ends_quietly(module: str, recordings_api: str) -> None:
    code, stderr = run_with_reader_gone(
        [module, "list", "--api-url", recordings_api, "--function-key", "k"]
    )

    assert stderr == ""
    assert code == EXIT_READER_GONE


@pytest.mark.usefixtures("acs_settings")
def test_a_connection_string_replaces_both_azure_account_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the Function App's Azure settings exported (README, "Operations"), the option stands
    for both accounts: neither account name is left beside it to be refused."""
    from scripts.operator_settings import read_settings

    monkeypatch.setenv("ARCHIVE_ACCOUNT_NAME", "acsrecarch0001")
    monkeypatch.setenv("INGRESS_ACCOUNT_NAME", "acsrecingr0001")
    connection = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
    )

    settings = read_settings("replay_poison", connection)

    assert capsys.readouterr().err == ""
    assert settings is not None
    assert settings.archive_account_name is None and settings.ingress_account_name is None
