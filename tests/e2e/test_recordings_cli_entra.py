"""The `recordings` CLI against `make up API_AUTH=entraId`'s stack: it signs in with azure-identity
(its managed-identity credential, pointed at the local token issuer by the stack's environment,
as App Service points it at the platform's), sends the token and never prints it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.simulation import EmulatorSimulation
from local_runtime.stack import LocalStack, running_stack
from local_runtime.token_issuer import LOCAL_API_APP_ID_URI
from tests.e2e.test_recordings_cli import ok, run_recordings

#: Variables of the caller's shell that would steer the CLI or azure-identity elsewhere.
_FOREIGN = ("RECORDINGS_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        emulator_args=("--clock", "manual"),
        api_auth="entraId",
        reconcile_every_seconds=0,
    ) as running:
        yield running


def recordings(
    *args: str, env: dict[str, str], drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    environ = {**clean, **{k: v for k, v in env.items() if k not in drop}}
    return run_recordings(args, environ, timeout=90)


def test_make_up_exports_what_the_cli_needs_to_sign_in_and_no_function_key(
    stack: LocalStack,
) -> None:
    env = stack.cli_env()
    assert env["RECORDINGS_AUTH"] == "entra"
    assert env["RECORDINGS_API_SCOPE"] == f"{LOCAL_API_APP_ID_URI}/.default"
    assert env["AZURE_TOKEN_CREDENTIALS"] == "ManagedIdentityCredential"
    assert "RECORDINGS_FUNCTION_KEY" not in env
    assert stack.function_env()["API_AUTH"] == "entraId"


def test_the_cli_signs_in_records_a_call_and_never_prints_the_token(
    stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.token_issuer is not None
    env = stack.cli_env()
    sim = EmulatorSimulation(stack.emulator_url)
    call = sim.create_call(["8:acs:entra-a", "8:acs:entra-b"])
    outputs = []
    started = recordings("start", call["serverCallId"], "--content", "audio", "-q", env=env)
    recording_id = ok(started).strip()
    outputs.append(started)
    sim.advance_clock(2)
    for command in (("pause", recording_id), ("status", recording_id), ("list", "--json")):
        result = recordings(*command, env=env)
        ok(result)
        outputs.append(result)
    stopped = recordings("stop", recording_id, env=env)
    assert ok(stopped).strip() == f"{recording_id}: stopped"
    downloaded = recordings(
        "download", recording_id, "--wait", "60", "--out", str(tmp_path), env=env
    )
    assert "every file verified" in ok(downloaded)
    outputs += [stopped, downloaded]
    issued = stack.token_issuer.issued
    assert len(issued) >= len(outputs)  # each command signed in through azure-identity
    printed = "".join(result.stdout + result.stderr for result in outputs)
    assert not [token for token in issued if token in printed]


def test_without_entra_sign_in_the_refusal_says_what_to_add(stack: LocalStack) -> None:
    result = recordings("list", env=stack.cli_env(), drop=("RECORDINGS_AUTH",))
    assert result.returncode == 1
    assert result.stderr == (
        "recordings: error: 401 Bearer token refused: An Entra ID access token is required: "
        "send 'Authorization: Bearer <token>'. (field: Authorization) The API takes Entra ID "
        "tokens: add --auth entra (or RECORDINGS_AUTH=entra).\n"
    )


def test_a_failed_sign_in_is_one_line_and_reaches_no_api(stack: LocalStack) -> None:
    env = {**stack.cli_env(), "IDENTITY_HEADER": "not-the-secret"}
    result = recordings("list", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("recordings: error: Entra ID sign-in failed: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_scope_the_tenant_does_not_know_fails_the_sign_in(stack: LocalStack) -> None:
    result = recordings("list", "--scope", "api://another-api/.default", env=stack.cli_env())
    assert result.returncode == 1
    assert "Entra ID sign-in failed" in result.stderr
    assert "AADSTS500011" in result.stderr


def test_url_and_scope_come_from_the_stack_outputs(stack: LocalStack, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"API_BASE_URL": f"{stack.api_url}/api", "API_AUDIENCE": LOCAL_API_APP_ID_URI})
    )
    env = stack.cli_env()
    result = recordings(
        "--stack-outputs",
        str(outputs),
        "list",
        env=env,
        drop=("RECORDINGS_API_URL", "RECORDINGS_API_SCOPE"),
    )
    ok(result)


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (("list",), {"RECORDINGS_API_SCOPE": ""}, "--auth entra needs the API's scope"),
        (("list", "--scope", "api://x y/.default"), {}, "--scope: 'api://x y/.default' is not"),
        (("list",), {"RECORDINGS_AUTH": "kerberos"}, "RECORDINGS_AUTH ('kerberos') must be"),
        (("list", "--stack-outputs", "/nonexistent/o.json"), {}, "--stack-outputs: /nonexist"),
    ],
    ids=["no-scope", "bad-scope", "bad-auth", "no-outputs-file"],
)
def test_sign_in_options_are_checked_before_any_request(
    stack: LocalStack, args: tuple[str, ...], env_change: dict[str, str], message: str
) -> None:
    result = recordings(*args, env={**stack.cli_env(), **env_change})
    assert result.returncode == 2
    assert message in result.stderr
