"""Checks run before `make preview|deploy|teardown`: the tools and logins Pulumi will need.

Each failed check prints ONE paragraph that says what is missing and how to fix it, and exits
non-zero; a missing CLI or login otherwise surfaces as a long Pulumi or Azure error halfway
through a deployment. The stack's config is validated here too, with the same rules the program
applies, so a bad value is reported before Pulumi even starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from infra.config import PROJECT, ConfigError, parse_config

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 60.0
#: Service-principal / workload-identity logins the azure-native provider accepts without az.
ARM_SECRET_VARIABLES = ("ARM_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE_PATH")
ARM_FLAG_VARIABLES = ("ARM_USE_OIDC", "ARM_USE_MSI")


class PreflightError(Exception):
    """A missing prerequisite; the message is the paragraph shown to the user."""


def _run(command: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def check_pulumi_cli(env: Mapping[str, str]) -> str:
    pulumi = shutil.which("pulumi", path=env.get("PATH", ""))
    if pulumi is None:
        raise PreflightError(
            "The pulumi CLI is not on PATH. Install it with `curl -fsSL https://get.pulumi.com "
            "| sh` (Linux/macOS), `brew install pulumi/tap/pulumi` or `winget install pulumi`, "
            "open a new shell so PATH includes ~/.pulumi/bin, and run `pulumi version` to check "
            "(https://www.pulumi.com/docs/install/)."
        )
    result = _run([pulumi, "version"], env)
    if result.returncode != 0:
        raise PreflightError(
            f"`pulumi version` failed ({_last_line(result.stderr)}); reinstall the pulumi CLI "
            "from https://www.pulumi.com/docs/install/."
        )
    return result.stdout.strip()


def check_pulumi_backend(env: Mapping[str, str]) -> str:
    pulumi = shutil.which("pulumi", path=env.get("PATH", "")) or "pulumi"
    result = _run([pulumi, "whoami", "--non-interactive"], env)
    if result.returncode != 0:
        raise PreflightError(
            "No Pulumi backend is logged in "
            f"(`pulumi whoami`: {_last_line(result.stderr or result.stdout)}). Log in once: "
            "`pulumi login --local` keeps state in ~/.pulumi on this machine; "
            "`pulumi login azblob://<container>` (with AZURE_STORAGE_ACCOUNT set) keeps it in "
            "Azure Blob Storage for a team; `pulumi login` uses Pulumi Cloud. Then run "
            "`pulumi stack init dev` if the stack does not exist yet."
        )
    return _last_line(result.stdout)


def _arm_environment_login(env: Mapping[str, str]) -> str | None:
    """Describe a complete ARM_* login in the environment, or None."""
    if not env.get("ARM_CLIENT_ID") and not _truthy(env.get("ARM_USE_MSI")):
        return None
    has_secret = any(env.get(name) for name in ARM_SECRET_VARIABLES)
    has_flag = any(_truthy(env.get(name)) for name in ARM_FLAG_VARIABLES)
    if not (has_secret or has_flag):
        return None
    return "ARM_* environment variables"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def check_azure_login(env: Mapping[str, str]) -> str:
    from_env = _arm_environment_login(env)
    if from_env:
        return from_env
    az = shutil.which("az", path=env.get("PATH", ""))
    detail = "the az CLI is not installed"
    if az is not None:
        result = _run([az, "account", "show", "--output", "json"], env)
        if result.returncode == 0:
            try:
                account = json.loads(result.stdout)
                return f"az CLI: {account.get('name')} ({account.get('id')})"
            except json.JSONDecodeError:
                return "az CLI"
        detail = f"`az account show` failed: {_last_line(result.stderr)}"
    raise PreflightError(
        f"No Azure login was found ({detail}). Either run `az login` and `az account set "
        "--subscription <id>`, or set ARM_CLIENT_ID, ARM_TENANT_ID and ARM_SUBSCRIPTION_ID with "
        "ARM_CLIENT_SECRET, ARM_CLIENT_CERTIFICATE_PATH or ARM_USE_OIDC=true (CI with workload "
        "identity), or ARM_USE_MSI=true on a machine with a managed identity."
    )


def _config_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def check_stack_config(stack: str, root: Path = REPO_ROOT) -> str:
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return f"no {path.name}: defaults apply"
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prefix = f"{PROJECT}:"
    raw = {
        key.removeprefix(prefix): _config_text(value)
        for key, value in (document.get("config") or {}).items()
        if key.startswith(prefix)
    }
    try:
        parse_config(raw, stack)
    except ConfigError as error:
        raise PreflightError(f"{path.name}: {error}. Fix the value and run again.") from None
    return f"{path.name} is valid"


def run_checks(stack: str, env: Mapping[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Every check in order; the first failure stops with its PreflightError."""
    return [
        f"config: {check_stack_config(stack, root)}",
        f"pulumi: {check_pulumi_cli(env)}",
        f"backend: {check_pulumi_backend(env)}",
        f"azure: {check_azure_login(env)}",
    ]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose config is checked")
    args = parser.parse_args(argv)
    try:
        lines = run_checks(args.stack, os.environ if env is None else env)
    except PreflightError as error:
        print(f"preflight: {error}", file=sys.stderr)
        return 1
    except (subprocess.TimeoutExpired, OSError) as error:
        print(f"preflight: a check could not run ({error}).", file=sys.stderr)
        return 1
    print("preflight ok: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
