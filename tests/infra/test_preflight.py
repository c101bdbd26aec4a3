"""scripts/preflight.py: each missing prerequisite gives one clear paragraph and a non-zero exit.

The pulumi and az CLIs are stood in by small executables on a controlled PATH, so every branch
runs for real (subprocess, exit codes, output parsing) without either tool installed.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scripts import preflight

AZ_ACCOUNT = '{"name": "Contoso Dev", "id": "00000000-0000-0000-0000-00000000c0de"}'


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _pulumi(folder: Path, *, logged_in: bool = True) -> None:
    whoami = 'echo "alice"' if logged_in else (
        'echo "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI '
        'sessions" >&2; exit 255'
    )  # fmt: skip
    _tool(folder, "pulumi", f'case "$1" in\n version) echo v3.200.0 ;;\n whoami) {whoami} ;;\n'
                            ' *) exit 2 ;;\nesac')  # fmt: skip


def _az(folder: Path, *, logged_in: bool = True) -> None:
    if logged_in:
        _tool(folder, "az", f"echo '{AZ_ACCOUNT}'")
    else:
        _tool(folder, "az", "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1")


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    return folder


def _run(tools: Path, capsys: pytest.CaptureFixture[str], **extra: str) -> tuple[int, str, str]:
    code = preflight.main(["--stack", "dev"], env={"PATH": str(tools), **extra})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_all_prerequisites_present(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pulumi(tools)
    _az(tools)
    code, out, err = _run(tools, capsys)
    assert (code, err) == (0, "")
    assert "pulumi: v3.200.0" in out
    assert "backend: alice" in out
    assert "azure: az CLI: Contoso Dev (00000000-0000-0000-0000-00000000c0de)" in out
    assert "config: Pulumi.dev.yaml is valid" in out


def test_missing_pulumi_cli_says_how_to_install(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _az(tools)
    code, out, err = _run(tools, capsys)
    assert code == 1 and out == ""
    assert err.startswith("preflight: The pulumi CLI is not on PATH.")
    assert "https://get.pulumi.com" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_no_backend_login_names_local_and_azblob_logins(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pulumi(tools, logged_in=False)
    _az(tools)
    code, _, err = _run(tools, capsys)
    assert code == 1
    assert "No Pulumi backend is logged in" in err
    assert "PULUMI_ACCESS_TOKEN must be set" in err
    assert "`pulumi login --local`" in err and "`pulumi login azblob://<container>`" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_no_azure_login_explains_az_login_and_arm_variables(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pulumi(tools)
    _az(tools, logged_in=False)
    code, _, err = _run(tools, capsys)
    assert code == 1
    assert "No Azure login was found (`az account show` failed: ERROR: Please run 'az login'" in err
    assert "`az login`" in err and "ARM_USE_OIDC=true" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_no_az_cli_and_no_arm_variables(tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pulumi(tools)
    code, _, err = _run(tools, capsys)
    assert code == 1
    assert "No Azure login was found (the az CLI is not installed)" in err


@pytest.mark.parametrize(
    "variables",
    [
        {"ARM_CLIENT_ID": "app", "ARM_USE_OIDC": "true"},
        {"ARM_CLIENT_ID": "app", "ARM_CLIENT_SECRET": "from-the-ci-vault"},
        {"ARM_USE_MSI": "true"},
    ],
    ids=["oidc", "client-secret", "managed-identity"],
)
def test_arm_environment_logins_need_no_az_cli(
    tools: Path, capsys: pytest.CaptureFixture[str], variables: dict[str, str]
) -> None:
    _pulumi(tools)
    code, out, _ = _run(tools, capsys, **variables)
    assert code == 0
    assert "azure: ARM_* environment variables" in out
    assert "from-the-ci-vault" not in out


def test_client_id_without_a_credential_is_not_a_login(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pulumi(tools)
    code, _, err = _run(tools, capsys, ARM_CLIENT_ID="app")
    assert code == 1 and "No Azure login was found" in err


def test_invalid_stack_config_is_reported_before_any_tool_runs(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  acs-call-recording:coolAfterDays: 200\n")
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.run_checks("bad", {"PATH": ""}, root=tmp_path)
    assert str(caught.value) == (
        "Pulumi.bad.yaml: coolAfterDays (200) must be less than archiveAfterDays (180). "
        "Fix the value and run again."
    )
