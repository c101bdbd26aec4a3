"""Mutation check of the infrastructure tests: flip each security property of the Pulumi
program in turn and show that a test fails.

A property the tests do not pin down can be lost in a refactor without anyone noticing. For
every entry of :data:`MUTATIONS` this copies the program and its tests to a scratch folder,
rewrites one line of ``infra/`` (e.g. ``allow_blob_public_access=False`` -> ``True``), runs the
relevant tests there and expects at least one failure. The untouched copy must pass first, so a
broken copy cannot pass for a caught mutation.

    python -m scripts.mutation_check            # every mutation, two at a time
    python -m scripts.mutation_check --only tls # the mutations whose name contains "tls"
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COPIED = (
    "infra", "functions", "scripts", "policy", "local_runtime", "tests/__init__.py",
    "tests/conftest.py",
    "tests/support", "tests/infra", "pyproject.toml", "Pulumi.yaml", "Pulumi.dev.yaml",
)  # fmt: skip
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
PROGRAM_TESTS = (
    "tests/infra/test_storage.py", "tests/infra/test_function_app.py",
    "tests/infra/test_events.py", "tests/infra/test_events_topic.py",
    "tests/infra/test_monitoring.py",
    "tests/infra/test_roles.py", "tests/infra/test_data_access.py", "tests/infra/test_program.py",
)  # fmt: skip


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (which must occur exactly once) with ``new`` in ``path``."""

    name: str
    path: str
    old: str
    new: str


def _m(name: str, path: str, old: str, new: str) -> Mutation:
    return Mutation(name, f"infra/{path}", old, new)


MUTATIONS: tuple[Mutation, ...] = (
    _m("storage-https-only", "storage.py",
       '"enable_https_traffic_only": True', '"enable_https_traffic_only": False'),
    _m("storage-tls", "storage.py",
       "storage.MinimumTlsVersion.TLS1_2", "storage.MinimumTlsVersion.TLS1_0"),
    _m("storage-public-blob", "storage.py",
       '"allow_blob_public_access": False', '"allow_blob_public_access": True'),
    _m("storage-shared-key", "storage.py",
       '"allow_shared_key_access": False', '"allow_shared_key_access": True'),
    _m("storage-oauth-default", "storage.py",
       '"default_to_o_auth_authentication": True', '"default_to_o_auth_authentication": False'),
    _m("storage-cross-tenant", "storage.py",
       '"allow_cross_tenant_replication": False', '"allow_cross_tenant_replication": True'),
    _m("blob-soft-delete", "storage.py",
       '"delete_retention_policy": {"enabled": True',
       '"delete_retention_policy": {"enabled": False'),
    _m("container-soft-delete", "storage.py",
       '"container_delete_retention_policy": {"enabled": True',
       '"container_delete_retention_policy": {"enabled": False'),
    _m("blob-versioning", "storage.py",
       '"is_versioning_enabled": True', '"is_versioning_enabled": False'),
    _m("container-public-access", "storage.py",
       "container_name=RECORDINGS_CONTAINER,\n            public_access=storage.PublicAccess.NONE",
       "container_name=RECORDINGS_CONTAINER,\n"
       "            public_access=storage.PublicAccess.CONTAINER"),
    _m("archive-retained", "storage.py",
       "retain_on_delete=args.retain_on_destroy", "retain_on_delete=False"),
    _m("lifecycle-delete", "storage.py",
       '"recordings-retention", f"{RECORDINGS_CONTAINER}/", retention_days)',
       '"recordings-retention", f"{RECORDINGS_CONTAINER}/", retention_days + 1)'),
    _m("worm-period", "storage.py",
       "immutability_period_since_creation_in_days=args.immutability_days",
       "immutability_period_since_creation_in_days=1"),
    _m("app-https-only", "function_app.py", "https_only=True", "https_only=False"),
    _m("app-tls", "function_app.py",
       '"min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2',
       '"min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_0'),
    _m("app-scm-tls", "function_app.py",
       '"scm_min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2',
       '"scm_min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_0'),
    _m("app-flex-refused-property", "function_app.py",
       '"http20_enabled": True,', '"http20_enabled": True, "ftps_state": web.FtpsState.DISABLED,'),
    _m("app-remote-debugging", "function_app.py",
       '"remote_debugging_enabled": False', '"remote_debugging_enabled": True'),
    _m("app-ftp-basic-auth", "function_app.py",
       'f"{name}-ftp-basic-auth",\n            name=self.app.name,\n'
       "            resource_group_name=args.resource_group_name,\n            allow=False",
       'f"{name}-ftp-basic-auth",\n            name=self.app.name,\n'
       "            resource_group_name=args.resource_group_name,\n            allow=True"),
    _m("app-scm-basic-auth", "function_app.py",
       'f"{name}-scm-basic-auth",\n            name=self.app.name,\n'
       "            resource_group_name=args.resource_group_name,\n            allow=False",
       'f"{name}-scm-basic-auth",\n            name=self.app.name,\n'
       "            resource_group_name=args.resource_group_name,\n            allow=True"),
    _m("app-deployment-identity", "function_app.py",
       "web.AuthenticationType.SYSTEM_ASSIGNED_IDENTITY",
       "web.AuthenticationType.STORAGE_ACCOUNT_CONNECTION_STRING"),
    _m("app-identity", "function_app.py",
       'identity={"type": web.ManagedServiceIdentityType.SYSTEM_ASSIGNED}',
       'identity={"type": web.ManagedServiceIdentityType.USER_ASSIGNED}'),
    _m("app-insights-entra", "function_app.py", '"Authorization=AAD"', '""'),
    _m("app-key-setting", "function_app.py",
       '"REGISTRY_TABLE": REGISTRY_TABLE,',
       '"REGISTRY_TABLE": REGISTRY_TABLE, "ACS_ACCESS_KEY": "k",'),
    _m("appi-local-auth", "monitoring.py", "disable_local_auth=True", "disable_local_auth=False"),
    _m("acs-identity", "communication.py",
       "communication.ManagedServiceIdentityType.SYSTEM_ASSIGNED",
       "communication.ManagedServiceIdentityType.NONE"),
    _m("acs-location", "communication.py", 'location="global"', 'location="westeurope"'),
    _m("event-identity", "events.py",
       "type=eventgrid.EventSubscriptionIdentityType.SYSTEM_ASSIGNED",
       "type=eventgrid.EventSubscriptionIdentityType.USER_ASSIGNED"),
    _m("event-filter", "events.py",
       "included_event_types=[RECORDING_EVENT_TYPE]", "included_event_types=[]"),
    _m("event-retry", "events.py",
       "max_delivery_attempts=args.max_delivery_attempts", "max_delivery_attempts=30"),
    _m("events-topic-local-auth", "events_topic.py",
       "disable_local_auth=True", "disable_local_auth=False"),
    _m("events-topic-sender-scope", "function_app.py",
       "scope_ids[Scope.EVENTS_TOPIC] = args.events_topic_id",
       "scope_ids[Scope.EVENTS_TOPIC] = args.archive_account_id"),
    _m("topic-sender-role", "data_access.py",
       '(_EG, Scope.EVENTS_QUEUE, "Put Message", data_actions=[f"{_QUEUES}/messages/add/action"]',
       '(_EG, Scope.EVENTS_QUEUE, "Put Message", data_actions=[f"{_QUEUES}/messages/write"]'),
    _m("recordings-tags-permission", "data_access.py",
       'data_actions=[f"{_BLOBS}/write", f"{_BLOBS}/tags/write"],\n'
       '        why="archiver: commit a copied',
       'data_actions=[f"{_BLOBS}/write"],\n        why="archiver: commit a copied'),
    _m("custom-role-scope", "roles.py",
       "assignable_scopes=[group],", "assignable_scopes=[group.apply(subscription_of)],"),
    _m("role-principal-type", "roles.py",
       "authorization.PrincipalType.SERVICE_PRINCIPAL", "authorization.PrincipalType.USER"),
    _m("role-scope", "function_app.py",
       "Scope.RECORDINGS_CONTAINER: args.recordings_container_id,",
       "Scope.RECORDINGS_CONTAINER: args.runtime_account_id,"),
    _m("required-tag", "config.py", '"managed-by": "pulumi"', '"managed-by": "hand"'),
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    name: str
    caught: bool
    detail: str
    seconds: float


def check_mutations_apply(
    mutations: Sequence[Mutation] = MUTATIONS, root: Path = REPO_ROOT
) -> None:
    """Every ``old`` text must occur exactly once, or the mutation would silently do nothing."""
    for mutation in mutations:
        count = (root / mutation.path).read_text(encoding="utf-8").count(mutation.old)
        if count != 1:
            raise ValueError(f"mutation {mutation.name}: {mutation.old!r} occurs {count} times")


def _copy_project(target: Path) -> None:
    for relative in COPIED:
        source = REPO_ROOT / relative
        if source.is_dir():
            shutil.copytree(source, target / relative, ignore=IGNORED)
        elif source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)


def _run_tests(folder: Path, tests: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def run_mutation(mutation: Mutation | None, tests: Sequence[str] = PROGRAM_TESTS) -> Outcome:
    """Run ``tests`` on a scratch copy with ``mutation`` applied (None = the untouched copy)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="acsrec-mutation-") as scratch:
        folder = Path(scratch)
        _copy_project(folder)
        name = "baseline"
        if mutation is not None:
            name = mutation.name
            target = folder / mutation.path
            target.write_text(
                target.read_text(encoding="utf-8").replace(mutation.old, mutation.new),
                encoding="utf-8",
            )
        result = _run_tests(folder, tests)
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    last_lines = (result.stdout.strip() or result.stderr.strip() or "(no output)").splitlines()
    detail = failed[0] if failed else last_lines[-1]
    return Outcome(name, result.returncode != 0, detail, time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run mutations whose name contains this")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    check_mutations_apply()
    baseline = run_mutation(None)
    if baseline.caught:
        print(f"baseline copy fails, nothing to compare against: {baseline.detail}")
        return 1
    print(f"baseline passes ({baseline.seconds:.1f} s)")
    chosen = [m for m in MUTATIONS if args.only in m.name]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        outcomes = list(pool.map(run_mutation, chosen))
    for outcome in outcomes:
        verdict = "caught  " if outcome.caught else "SURVIVED"
        print(f"{verdict} {outcome.name:<26} {outcome.seconds:5.1f} s  {outcome.detail}")
    survived = [o.name for o in outcomes if not o.caught]
    print(f"{len(outcomes) - len(survived)}/{len(outcomes)} mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
