"""The program as a whole: complete under preview and up, tags, outputs, options, invokes."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from pulumi.runtime import rpc

from infra.config import ConfigError
from tests.infra.harness import ProgramRun, run_program, run_program_with_outputs, stand_in_package
from tests.infra.mocks import AzureMocks
from tests.infra.queries import of_type, one

EXPECTED_COUNTS = {
    "acsrec:index:CallRecording": 1,
    "acsrec:index:Observability": 1,
    "acsrec:index:RecordingCommunication": 1,
    "acsrec:index:ArchiveStorage": 1,
    "acsrec:index:IngressStorage": 1,
    "acsrec:index:RuntimeStorage": 1,
    "acsrec:index:RecordingFunctionApp": 1,
    "acsrec:index:RecordingEvents": 1,
    "acsrec:index:RecordingEventsTopic": 1,
    "acsrec:index:RecordingAlerts": 1,
    "azure-native:resources:ResourceGroup": 1,
    "azure-native:communication:CommunicationService": 1,
    "azure-native:monitor:DiagnosticSetting": 3,
    "azure-native:storage:StorageAccount": 3,
    "azure-native:storage:BlobServiceProperties": 3,
    "azure-native:storage:BlobContainer": 3,
    "azure-native:storage:Queue": 2,
    "azure-native:storage:Table": 1,
    "azure-native:storage:ManagementPolicy": 2,
    "azure-native:operationalinsights:Workspace": 1,
    "azure-native:applicationinsights:Component": 1,
    "azure-native:web:AppServicePlan": 1,
    "azure-native:web:WebApp": 1,
    "azure-native:web:WebAppFtpAllowed": 1,
    "azure-native:web:WebAppScmAllowed": 1,
    "azure-native:authorization:RoleAssignment": 13,
    "azure-native:authorization:RoleDefinition": 5,
    "azure-native:eventgrid:SystemTopic": 1,
    "azure-native:eventgrid:SystemTopicEventSubscription": 1,
    "azure-native:eventgrid:Topic": 1,
    "azure-native:monitor:ActionGroup": 1,
    "azure-native:monitor:MetricAlert": 2,
    "azure-native:monitor:ScheduledQueryRule": 2,
    "pulumi-python:dynamic:Resource": 3,
}
REQUIRED_TAGS = {"app": "acs-call-recording", "environment": "dev", "managed-by": "pulumi"}


def _counts(run: ProgramRun) -> dict[str, int]:
    counts: dict[str, int] = {}
    for registration in run.registrations:
        counts[registration.type_] = counts.get(registration.type_, 0) + 1
    return counts


def _unknowns(value: Any, path: str = "") -> list[str]:
    if value == rpc.UNKNOWN:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _unknowns(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unknowns(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("run_name", ["default_run", "preview_run"])
def test_program_registers_completely(run_name: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(run_name)
    assert _counts(run) == EXPECTED_COUNTS
    unknown = [f"{r.name}{p}" for r in run.registrations for p in _unknowns(r.inputs)]
    assert unknown == []


def test_preview_and_up_register_the_same_inputs(
    default_run: ProgramRun, preview_run: ProgramRun
) -> None:
    def key(run: ProgramRun) -> dict[str, dict]:
        return {
            r.urn: {k: v for k, v in r.inputs.items() if k != "__provider"}
            for r in run.registrations
        }

    assert key(preview_run) == key(default_run)


def test_every_input_reaches_the_engine_in_camel_case(default_run: ProgramRun) -> None:
    """A dict given where the SDK expects a union type is passed through untranslated."""
    own_keys = {"app_name", "scm_url", "package_path", "package_sha256", "policy_id", "grant_ids"}

    def snake(value: Any, path: str) -> list[str]:
        if isinstance(value, dict):
            found = [
                f"{path}/{k}"
                for k in value
                if "_" in k and not k.startswith("__") and k not in own_keys
            ]
            return found + [p for k, v in value.items() for p in snake(v, f"{path}/{k}")]
        if isinstance(value, list):
            return [p for v in value for p in snake(v, path)]
        return []

    app_settings_parent = "siteConfig/appSettings"
    offenders = [
        p
        for r in default_run.registrations
        for p in snake(r.inputs, r.name)
        if app_settings_parent not in p
    ]
    assert offenders == []


def _taggable(type_: str) -> bool:
    _, module, name = type_.split(":")
    cls = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_resource_has_the_required_and_user_tags() -> None:
    regs = run_program({"tags": {"cost-center": "cc-42"}})
    taggable = [r for r in regs if r.type_.startswith("azure-native:") and _taggable(r.type_)]
    # RG, ACS, 3 accounts, logs, appi, plan, app, system topic, events topic, 5 alerting
    assert len(taggable) == 16
    missing = {r.name: r.inputs.get("tags") for r in taggable
               if r.inputs.get("tags") != {**REQUIRED_TAGS, "cost-center": "cc-42"}}  # fmt: skip
    assert missing == {}


def test_stack_outputs_name_the_endpoints_and_hold_no_secret(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    app = one(regs, "azure-native:web:WebApp").outputs
    acs = one(regs, "azure-native:communication:CommunicationService").outputs
    archive = one(regs, "azure-native:storage:StorageAccount", "acsrecarch").outputs["name"]
    ingress = one(regs, "azure-native:storage:StorageAccount", "acsrecingr").outputs["name"]
    group = one(regs, "azure-native:resources:ResourceGroup").outputs["name"]
    topic = one(regs, "azure-native:eventgrid:Topic").outputs
    assert default_run.outputs == {
        "API_BASE_URL": f"https://{app['defaultHostName']}/api",
        "FUNCTION_APP_NAME": app["name"],
        "ACS_ENDPOINT": f"https://{acs['hostName']}",
        "ACS_RESOURCE_ID": acs["id"],
        "ARCHIVE_ACCOUNT_NAME": archive,
        "INGRESS_ACCOUNT_NAME": ingress,
        "RECORDINGS_CONTAINER_URL": f"https://{archive}.blob.core.windows.net/recordings",
        "EVENTS_QUEUE": "recording-events",
        "POISON_QUEUE": "recording-events-poison",
        "RESOURCE_GROUP_NAME": group,
        "NETWORK_MODE": "public",
        "API_AUDIENCE": "",
        "RECORDING_EVENTS_TOPIC_ID": topic["id"],
        "RECORDING_EVENTS_TOPIC_ENDPOINT": topic["endpoint"],
    }


def test_existing_resource_group_is_used_instead_of_a_new_one() -> None:
    run = run_program_with_outputs({"resourceGroupName": "rg-shared-telephony"})
    assert of_type(run.registrations, "azure-native:resources:ResourceGroup") == []
    groups = {
        r.inputs["resourceGroupName"] for r in run.registrations if "resourceGroupName" in r.inputs
    }
    assert groups == {"rg-shared-telephony"}
    assert run.outputs["RESOURCE_GROUP_NAME"] == "rg-shared-telephony"


def test_location_is_applied_to_regional_resources() -> None:
    regs = run_program({"location": "swedencentral"})
    for type_ in ("azure-native:storage:StorageAccount", "azure-native:web:WebApp",
                  "azure-native:operationalinsights:Workspace"):  # fmt: skip
        assert {r.inputs["location"] for r in of_type(regs, type_)} == {"swedencentral"}, type_


def test_code_deployment_targets_the_app_with_the_package_hash(default_run: ProgramRun) -> None:
    import hashlib

    regs = default_run.registrations
    app = one(regs, "azure-native:web:WebApp").outputs
    code = one(regs, "pulumi-python:dynamic:Resource", "acsrec-code")
    package = stand_in_package()
    assert code.inputs["app_name"] == app["name"]
    assert code.inputs["scm_url"] == f"https://{app['name']}.scm.azurewebsites.net"
    assert code.inputs["package_path"] == str(package)
    assert code.inputs["package_sha256"] == hashlib.sha256(package.read_bytes()).hexdigest()
    grants = {
        r.urn for r in regs if r.name.startswith("acsrec-func-") and "RoleAssignment" in r.type_
    }
    assert len(grants) == 11
    assert grants <= set(code.depends_on)
    assert one(regs, "azure-native:web:WebApp").urn in code.depends_on


def test_deploy_code_false_registers_no_code_deployment() -> None:
    regs = run_program({"deployCode": False})
    dynamic = of_type(regs, "pulumi-python:dynamic:Resource")
    assert sorted(r.name for r in dynamic) == [
        "acsrec-events-grants-settled",
        "acsrec-func-role-definitions-settled",
    ]


def test_missing_package_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"packagePath \('.*nothing.zip'\) must be a zip file"):
        run_program({"packagePath": str(tmp_path / "nothing.zip")})


def test_bad_config_stops_before_any_resource_registers() -> None:
    with pytest.raises(ConfigError) as caught:
        run_program({"coolAfterDays": 200})
    assert str(caught.value) == "coolAfterDays (200) must be less than archiveAfterDays (180)"
    # The harness stays usable after a failed run.
    assert _counts(run_program_with_outputs()) == EXPECTED_COUNTS


def test_components_use_the_project_type_tokens_and_parent_their_children(
    default_run: ProgramRun,
) -> None:
    regs = default_run.registrations
    root = one(regs, "acsrec:index:CallRecording")
    components = [r for r in regs if r.type_.startswith("acsrec:index:") and r is not root]
    assert all(c.parent == root.urn for c in components)
    component_urns = {c.urn for c in components} | {root.urn}
    orphans = [r.name for r in regs if r is not root and r.parent not in component_urns]
    assert orphans == []


def test_mock_refuses_invokes() -> None:
    import pulumi

    with pytest.raises(NotImplementedError, match="un-mocked invoke azure-native:x:getY"):
        AzureMocks().call(pulumi.runtime.MockCallArgs("azure-native:x:getY", {}, None))
