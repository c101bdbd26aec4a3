"""The GitHub Actions workflows: actionlint (scripts/actionlint.py, as `make lint` runs it) and
the promises the README makes about them, read from the YAML itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from local_runtime.processes import REPO_ROOT
from scripts import actionlint

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def step_using(document: dict[str, Any], action: str) -> dict[str, Any]:
    matching = [s for s in steps(document) if s.get("uses", "").startswith(f"{action}@")]
    assert matching, f"no step uses {action}"
    return matching[0]


def run_commands(document: dict[str, Any]) -> list[str]:
    return [s["run"] for s in steps(document) if "run" in s]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """`make lint` runs the script by path, not as a module: so does this."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "actionlint.py"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_three_workflows_exist() -> None:
    assert [p.name for p in actionlint.workflow_files()] == ["ci.yml", "deploy.yml", "preview.yml"]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = run_script()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "actionlint: 3 workflow file(s) clean"


@pytest.fixture(scope="module")
def broken_workflows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """Two broken workflows linted in one run (each run compiles the WebAssembly module anew)."""
    directory = tmp_path_factory.mktemp("workflows")
    mistakes = directory / "mistakes.yml"
    mistakes.write_text(
        "on: push\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    needs: missing-job\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ matrix.python }}\n"
    )
    syntax = directory / "syntax.yml"
    syntax.write_text("on: push\njobs:\n  a:\n    runs-on: [unclosed\n")
    return mistakes, syntax, run_script(str(mistakes), str(syntax))


def test_actionlint_reports_each_kind_of_problem(broken_workflows: tuple[Path, Path, Any]) -> None:
    mistakes, _, result = broken_workflows
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(mistakes))]
    kinds = {line.rsplit("[", 1)[-1].rstrip("]") for line in lines}
    assert kinds == {"job-needs", "expression", "project-permissions", "project-pinning"}
    assert any(line.startswith(f"{mistakes}:8:") for line in lines)
    assert result.stdout.rstrip().endswith("finding(s) in 2 workflow file(s)")


def test_actionlint_reports_syntax_errors(broken_workflows: tuple[Path, Path, Any]) -> None:
    _, syntax, result = broken_workflows
    [line] = [line for line in result.stdout.splitlines() if line.startswith(str(syntax))]
    assert line.endswith("[syntax-check]")
    assert "could not parse as YAML" in line


def test_missing_file_or_linter_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_script(str(tmp_path / "absent.yml"))
    assert result.returncode == 2
    assert "no such workflow file" in result.stderr
    monkeypatch.setattr(actionlint.shutil, "which", lambda _name: None)
    assert actionlint.main([str(WORKFLOWS / "ci.yml")]) == 2


def test_missing_npm_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(actionlint, "NPM_PACKAGE", "@acsrec-absent/no-such-linter")
    assert actionlint.main([str(WORKFLOWS / "ci.yml")]) == 2
    err = capsys.readouterr().err
    assert "cannot load @acsrec-absent/no-such-linter" in err
    assert "run `make install`" in err


@pytest.mark.parametrize("name", ["ci.yml", "preview.yml", "deploy.yml"])
def test_every_action_is_pinned_to_a_commit_with_its_version(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    uses_lines = [line.strip() for line in text.splitlines() if "uses:" in line]
    assert uses_lines
    for line in uses_lines:
        reference = line.split("uses:", 1)[1].split("#", 1)[0].strip()
        assert SHA_PIN.match(reference), line
        assert re.search(r"# v\d+\.\d+\.\d+$", line), f"no version comment: {line}"


@pytest.mark.parametrize("name", ["ci.yml", "preview.yml", "deploy.yml"])
def test_no_secret_or_untrusted_input_is_expanded_inside_a_script(name: str) -> None:
    """Secrets reach steps through env only; ${{ }} in `run:` would be printed or injected."""
    for command in run_commands(load(name)):
        assert "${{" not in command, command


def test_ci_lints_and_tests_with_make_on_push_and_pull_request() -> None:
    ci = load("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["permissions"] == {"contents": "read"}
    python = step_using(ci, "actions/setup-python")["with"]
    assert (python["python-version"], python["cache"]) == ("3.11", "pip")
    node = step_using(ci, "actions/setup-node")["with"]
    assert (node["node-version"], node["cache"]) == ("20", "npm")
    assert run_commands(ci) == ["make install", "make lint", "make test"]


def test_preview_comments_on_the_pr_with_the_policy_pack_and_oidc() -> None:
    preview = load("preview.yml")
    assert list(preview["on"]) == ["pull_request"]
    assert preview["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    # Previews run the PR's own code: they sign in as the read-only app, never the deployer.
    assert preview["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
    login = step_using(preview, "azure/login")["with"]
    assert set(login) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no client secret
    pulumi = step_using(preview, "pulumi/actions")["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["policyPacks"] == "policy"
    assert pulumi["cloud-url"] == "${{ env.PULUMI_BACKEND_URL }}"
    assert preview["env"]["ARM_USE_OIDC"] == "true"
    assert "make install" in run_commands(preview)


def test_deploy_runs_up_behind_an_environment_then_the_smoke_test() -> None:
    deploy = load("deploy.yml")
    assert set(deploy["on"]) == {"push", "workflow_dispatch"}
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["permissions"] == {"contents": "read"}
    [job] = deploy["jobs"].values()
    assert job["environment"]["name"] == "production"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    names = [s.get("uses", s.get("run", "")).split("@")[0] for s in job["steps"]]
    up = names.index("pulumi/actions")
    smoke = next(i for i, n in enumerate(names) if "scripts.smoke_test" in n)
    assert up < smoke
    assert job["steps"][up]["with"]["command"] == "up"
    assert job["steps"][up]["with"]["policyPacks"] == "policy"
    assert "--outputs-json" in job["steps"][smoke]["run"]


def test_the_pulumi_cli_version_matches_the_sdk_pin() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    for name in ("preview.yml", "deploy.yml"):
        assert step_using(load(name), "pulumi/actions")["with"]["pulumi-version"] == pins["pulumi"]
