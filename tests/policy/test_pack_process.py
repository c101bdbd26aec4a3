"""The pack as the Pulumi CLI runs it: `python -m pulumi.policy ENGINE policy/` in its own process,
spoken to over the Analyzer gRPC protocol. Proves PulumiPolicy.yaml's entry point loads, names
every policy and reports violations as mandatory, with no Pulumi CLI or cloud at hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from local_runtime.processes import REPO_ROOT, ManagedProcess
from policy import baseline
from policy.policies import PACK_NAME
from tests.policy import examples

PACK_DIR = REPO_ROOT / "policy"
MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
URN_PREFIX = "urn:pulumi:dev::acs-call-recording::"


def _announced_port(proc: ManagedProcess) -> int | None:
    """The pack prints its gRPC port as its first line once it serves."""
    if proc.log_path is None or not proc.log_path.exists():
        return None
    text = proc.log_path.read_text()
    if "\n" not in text:  # the line may still be on its way
        return None
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() else None


def pack_python() -> Path:
    """The interpreter the CLI picks: PulumiPolicy.yaml's virtualenv, relative to the pack."""
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    virtualenv = (PACK_DIR / project["runtime"]["options"]["virtualenv"]).resolve()
    return virtualenv / "bin" / "python"


def _pins(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_pack_virtualenv_is_the_project_venv_with_the_same_pins() -> None:
    assert pack_python().parent.parent == REPO_ROOT / ".venv"
    pack_pins = _pins(PACK_DIR / "requirements.txt")
    assert set(pack_pins) == {"pulumi", "pulumi-policy"}
    root_pins = _pins(REPO_ROOT / "requirements.txt")
    assert {name: root_pins.get(name) for name in pack_pins} == pack_pins


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    # The engine address is never dialled unless a policy logs; port 9 (discard) is a stand-in.
    proc = ManagedProcess(
        name="policy-pack",
        argv=[str(pack_python()), "-u", "-m", "pulumi.policy", "127.0.0.1:9", str(PACK_DIR)],
        ready=lambda: _announced_port(proc) is not None,
        cwd=PACK_DIR,
    )
    proc.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{_announced_port(proc)}")
    try:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        proc.stop()


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(props)
    return value


def _resource(type_: str, name: str, props: dict[str, Any], deps: list[str] = ()) -> Any:
    return analyzer_pb2.AnalyzerResource(
        type=type_,
        name=name,
        urn=f"{URN_PREFIX}{type_}::{name}",
        properties=_struct(props),
        dependencies=list(deps),
    )


def test_pack_announces_its_name_and_every_policy(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == PACK_NAME
    expected = {r.name for r in baseline.RESOURCE_RULES} | {r.name for r in baseline.STACK_RULES}
    assert {p.name for p in info.policies} == expected
    assert {p.enforcementLevel for p in info.policies} == {MANDATORY}


def test_compliant_resource_gets_no_diagnostic(analyzer: Any) -> None:
    request = analyzer_pb2.AnalyzeRequest(
        type=baseline.STORAGE_ACCOUNT,
        name="archive",
        urn=f"{URN_PREFIX}{baseline.STORAGE_ACCOUNT}::archive",
        properties=_struct(examples.storage_account()),
    )
    assert list(analyzer.Analyze(request, timeout=10).diagnostics) == []


def test_insecure_resource_gets_a_mandatory_diagnostic_per_violation(analyzer: Any) -> None:
    props = {**examples.storage_account(), "allowSharedKeyAccess": True, "tags": {"app": "a"}}
    request = analyzer_pb2.AnalyzeRequest(
        type=baseline.STORAGE_ACCOUNT,
        name="archive",
        urn=f"{URN_PREFIX}{baseline.STORAGE_ACCOUNT}::archive",
        properties=_struct(props),
    )
    diagnostics = analyzer.Analyze(request, timeout=10).diagnostics
    # The engine shows the policy's description, then the violation on the last line.
    found = sorted((d.policyName, d.message.splitlines()[-1]) for d in diagnostics)
    assert found == [
        (
            "required-tags",
            "tags.environment is not set; the tag is required",
        ),
        ("required-tags", "tags.managed-by is not set; the tag is required"),
        (
            "storage-account-hardening",
            "allowSharedKeyAccess is True; it must be false (Entra ID only, no account keys)",
        ),
    ]
    assert {d.enforcementLevel for d in diagnostics} == {MANDATORY}


def test_stack_without_lifecycle_policy_is_refused(analyzer: Any) -> None:
    account = _resource(baseline.STORAGE_ACCOUNT, "archive", examples.storage_account())
    container = _resource(
        baseline.BLOB_CONTAINER,
        "archive-recordings",
        {"containerName": "recordings"},
        [account.urn],
    )
    blob_service = _resource(
        baseline.BLOB_SERVICE_PROPERTIES,
        "archive-blob-service",
        examples.blob_service_properties(),
        [account.urn],
    )
    request = analyzer_pb2.AnalyzeStackRequest(resources=[account, container, blob_service])
    diagnostics = analyzer.AnalyzeStack(request, timeout=10).diagnostics
    assert [(d.policyName, d.urn) for d in diagnostics] == [
        ("recordings-lifecycle-policy-present", account.urn)
    ]
    assert diagnostics[0].enforcementLevel == MANDATORY
