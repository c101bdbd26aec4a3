"""Checks run before `make preview|deploy|teardown`: the tools and logins Pulumi will need.

Every check runs, and every problem found is printed at once, one line each, saying what is
missing and how to fix it; then the exit code is 1. A missing CLI or login otherwise surfaces as
a long Pulumi or Azure error halfway through a deployment. The stack's config file is validated
here too, with the same rules the program applies, so a bad value is reported before Pulumi
even starts; a file that is not YAML, or not shaped like a Pulumi stack file, is a problem
line too, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from infra.config import PROJECT, config_problems

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 60.0
#: Service-principal / workload-identity logins the azure-native provider accepts without az.
ARM_SECRET_VARIABLES = ("ARM_CLIENT_SECRET", "ARM_CLIENT_CERTIFICATE_PATH")
ARM_FLAG_VARIABLES = ("ARM_USE_OIDC", "ARM_USE_MSI")
#: What a service-principal login (secret, certificate or OIDC) needs beside its credential.
ARM_IDENTITY_VARIABLES = ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID")


class PreflightError(Exception):
    """Missing prerequisites; ``problems`` holds one line each, ``str()`` all of them."""

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


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
    """Describe a complete ARM_* login in the environment, or None when there is none.

    :raises PreflightError: for a service-principal login that lacks its client, tenant or
        subscription (the provider would fail only once Pulumi runs).
    """
    if _truthy(env.get("ARM_USE_MSI")):
        return "ARM_* environment variables"
    oidc = _truthy(env.get("ARM_USE_OIDC"))
    has_secret = any(env.get(name) for name in ARM_SECRET_VARIABLES)
    if not (oidc or (has_secret and env.get("ARM_CLIENT_ID"))):
        return None
    missing = [name for name in ARM_IDENTITY_VARIABLES if not env.get(name)]
    if missing:
        how = "ARM_USE_OIDC=true" if oidc else "a client secret or certificate"
        raise PreflightError(
            f"A service-principal login with {how} needs {', '.join(ARM_IDENTITY_VARIABLES[:-1])}"
            f" and {ARM_IDENTITY_VARIABLES[-1]}; missing: {', '.join(missing)}. Set them (the "
            "app registration's client id, its tenant, the target subscription), or unset "
            "ARM_USE_OIDC and use `az login`."
        )
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
    """:raises PreflightError: one line per problem of ``Pulumi.<stack>.yaml``.

    A value set with ``pulumi config set --secret`` is stored encrypted (``secure: v1:...``):
    only the program sees it decrypted, so here its key must be known and the rest of its checks
    wait for ``pulumi preview``, which applies the same rules without showing the value.
    """
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return f"no {path.name}: defaults apply"
    raw, encrypted = _project_config(path)
    problems = config_problems(raw, unreadable=encrypted)
    if problems:
        raise PreflightError(
            *(f"{path.name}: {problem}. Fix the value and run again." for problem in problems)
        )
    if encrypted:
        secrets = ", ".join(sorted(encrypted))
        return (
            f"{path.name} is valid; its secret values ({secrets}) are checked by "
            "`pulumi preview`, which can decrypt them"
        )
    return f"{path.name} is valid"


def _is_encrypted(value: object) -> bool:
    """A ``secure:`` value, or an object or list holding one (Pulumi encrypts leaves)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return True
        return any(_is_encrypted(item) for item in value.values())
    if isinstance(value, list):
        return any(_is_encrypted(item) for item in value)
    return False


def _project_config(path: Path) -> tuple[dict[str, str], frozenset[str]]:
    """This project's keys (without the prefix) as text, as Pulumi passes them to the program,
    and apart, the keys whose values are encrypted (their ciphertext is never judged or shown).

    :raises PreflightError: when the file cannot be read, is not YAML, or is not a mapping with
        a ``config:`` mapping of string keys.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise PreflightError(f"{path.name} cannot be read ({error}).") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        reason = getattr(error, "problem", None) or type(error).__name__
        raise PreflightError(
            f"{path.name} is not valid YAML{line} ({reason}). Fix the file and run again."
        ) from None
    shape = "a mapping with a `config:` mapping of `acs-call-recording:<key>: value` entries"
    if document is None:
        return {}, frozenset()
    if not isinstance(document, dict):
        raise PreflightError(
            f"{path.name} holds a {_yaml_kind(document)}, not {shape}. Fix the file and run again."
        )
    config = document.get("config")
    if config is None:
        return {}, frozenset()
    if not isinstance(config, dict):
        raise PreflightError(
            f"{path.name}: `config:` is a {_yaml_kind(config)}; it must be a mapping of "
            f"`{PROJECT}:<key>: value` entries. Fix the file and run again."
        )
    prefix = f"{PROJECT}:"
    ours = {
        str(key).removeprefix(prefix): value
        for key, value in config.items()
        if str(key).startswith(prefix)
    }
    encrypted = frozenset(key for key, value in ours.items() if _is_encrypted(value))
    readable = {key: _config_text(value) for key, value in ours.items() if key not in encrypted}
    return readable, encrypted


def _yaml_kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "plain string"
    return type(value).__name__


def run_checks(stack: str, env: Mapping[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Every check, whatever the others found.

    :returns: one line per check that passed.
    :raises PreflightError: with every problem found, one line each.
    """
    passed: list[str] = []
    problems: list[str] = []

    def check(name: str, run: Callable[[], str]) -> bool:
        try:
            passed.append(f"{name}: {run()}")
            return True
        except PreflightError as error:
            problems.extend(error.problems)
        except (subprocess.TimeoutExpired, OSError) as error:
            problems.append(f"The {name} check could not run ({error}).")
        return False

    check("config", lambda: check_stack_config(stack, root))
    if check("pulumi", lambda: check_pulumi_cli(env)):
        check("backend", lambda: check_pulumi_backend(env))
    check("azure", lambda: check_azure_login(env))
    if problems:
        raise PreflightError(*problems)
    return passed


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose config is checked")
    args = parser.parse_args(argv)
    try:
        lines = run_checks(args.stack, os.environ if env is None else env)
    except PreflightError as error:
        for problem in error.problems:
            print(f"preflight: {problem}", file=sys.stderr)
        return 1
    print("preflight ok: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
