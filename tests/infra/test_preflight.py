"""scripts/preflight.py: each missing prerequisite gives one clear paragraph and a non-zero exit.

The pulumi and az CLIs are stood in by small executables on a controlled PATH, so every branch
runs for real (subprocess, exit codes, output parsing) without either tool installed.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import CONFIG_FIELDS
from scripts import preflight

#: YAML documents of any shape: scalars, lists and mappings nested a few levels.
_YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["config", "acs-call-recording:coolAfterDays", "acs-call-recording:tags"]
            )
            | st.text(max_size=10)
            | st.integers(),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)

ARM_IDENTITY = {"ARM_CLIENT_ID": "app", "ARM_TENANT_ID": "tenant", "ARM_SUBSCRIPTION_ID": "sub"}
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


def test_every_problem_is_one_line_on_stderr(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(tools, capsys, ARM_USE_OIDC="true")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert [line.split(" ")[1] for line in lines] == ["The", "A"]  # pulumi CLI, ARM login
    assert all(line.startswith("preflight: ") for line in lines)
    assert "Traceback" not in err


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
        {"ARM_USE_OIDC": "true", **ARM_IDENTITY},
        {"ARM_CLIENT_SECRET": "from-the-ci-vault", **ARM_IDENTITY},
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


@pytest.mark.parametrize(
    ("variables", "missing"),
    [
        ({"ARM_USE_OIDC": "true", "ARM_CLIENT_ID": "app"}, "ARM_TENANT_ID, ARM_SUBSCRIPTION_ID"),
        (
            {"ARM_USE_OIDC": "true", "ARM_TENANT_ID": "t", "ARM_SUBSCRIPTION_ID": "s"},
            "ARM_CLIENT_ID",
        ),
        (
            {"ARM_CLIENT_ID": "app", "ARM_CLIENT_SECRET": "from-the-ci-vault"},
            "ARM_TENANT_ID, ARM_SUBSCRIPTION_ID",
        ),
    ],
    ids=["oidc-without-tenant-and-subscription", "oidc-without-client", "secret-without-tenant"],
)
def test_a_service_principal_login_needs_client_tenant_and_subscription(
    tools: Path, capsys: pytest.CaptureFixture[str], variables: dict[str, str], missing: str
) -> None:
    _pulumi(tools)
    _az(tools)  # a working az login does not hide the broken ARM_* login Pulumi would use
    code, _, err = _run(tools, capsys, **variables)
    assert code == 1
    assert "needs ARM_CLIENT_ID, ARM_TENANT_ID and ARM_SUBSCRIPTION_ID" in err
    assert f"missing: {missing}." in err
    assert "from-the-ci-vault" not in err
    assert err.count("\n") == 1


def _stack_file(folder: Path, text: str) -> None:
    (folder / "Pulumi.bad.yaml").write_text(text)


def _problems(folder: Path) -> list[str]:
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.check_stack_config("bad", root=folder)
    return caught.value.problems


def test_every_broken_config_rule_is_listed_at_once(tmp_path: Path) -> None:
    _stack_file(
        tmp_path,
        "config:\n"
        "  acs-call-recording:coolAfterDays: 200\n"
        "  acs-call-recording:location: West Europe\n"
        "  acs-call-recording:logRetentionDays: 7\n"
        "  acs-call-recording:colour: blue\n",
    )
    assert _problems(tmp_path) == [
        f"Pulumi.bad.yaml: {problem}. Fix the value and run again."
        for problem in (
            "colour is not a known config key of acs-call-recording; known keys: "
            + ", ".join(f.key for f in CONFIG_FIELDS),
            "location ('West Europe') must be a lowercase Azure region name such as westeurope",
            "logRetentionDays (7) must be between 30 and 730",
            "coolAfterDays (200) must be less than archiveAfterDays (180)",
            "coolAfterDays (200) must be less than coldAfterDays (90)",
        )
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config: [a, b]\n", "Pulumi.bad.yaml: `config:` is a list; it must be a mapping"),
        ("just words\n", "Pulumi.bad.yaml holds a plain string, not a mapping"),
        ("config:\n  a: [1, 2\n", "Pulumi.bad.yaml is not valid YAML at line 3"),
        ("config: {a: 1}\n\tb: 2\n", "Pulumi.bad.yaml is not valid YAML"),
        ("- 1\n- 2\n", "Pulumi.bad.yaml holds a list, not a mapping"),
    ],
    ids=["config-list", "plain-string", "unclosed-list", "tab", "top-level-list"],
)
def test_a_file_that_is_not_a_stack_file_is_one_line_not_a_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    _stack_file(tmp_path, text)
    [problem] = _problems(tmp_path)
    assert problem.startswith(expected)
    assert problem.endswith("Fix the file and run again.")


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200) | st.builds(yaml.safe_dump, _YAML_VALUES))
def test_no_stack_file_content_ends_in_a_traceback(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "Pulumi.bad.yaml").write_text(text, encoding="utf-8", errors="replace")
        try:
            preflight.check_stack_config("bad", root=Path(folder))
        except preflight.PreflightError as error:
            assert error.problems
            assert all(line and "\n" not in line for line in error.problems)


def test_config_problems_and_missing_tools_are_reported_together(
    tmp_path: Path, tools: Path
) -> None:
    _stack_file(tmp_path, "config:\n  acs-call-recording:coolAfterDays: 200\n")
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.run_checks("bad", {"PATH": str(tools)}, root=tmp_path)
    problems = caught.value.problems
    assert problems[0].startswith("Pulumi.bad.yaml: coolAfterDays (200) must be less than")
    assert any(p.startswith("The pulumi CLI is not on PATH.") for p in problems)
    assert any(p.startswith("No Azure login was found") for p in problems)
    assert len(problems) == 4  # two config rules, the CLI, the login (no backend check without CLI)
