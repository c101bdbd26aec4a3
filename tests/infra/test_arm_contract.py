"""Contract tests: every resource the program registers, in the public and the private stack and
with each optional feature on, fits Microsoft's management SDK model of its ARM request body
(tests/infra/arm_contract.py): no unknown property, only the enum values the API defines, every
required field, no read-only field, the declared types and limits.

| azure-native type | pulumi API | pinned azure-mgmt-… package | model API |
|---|---|---|---|
| resources:ResourceGroup | 2024-03-01 | resource 25.0.0 | 2025-04-01 |
| storage:* (7 types) | 2024-01-01 | storage 23.0.0 | 2024-01-01 |
| communication:CommunicationService | 2026-03-18 | communication 2.2.0 | 2025-09-01 |
| web:AppServicePlan, WebApp, WebAppFtpAllowed/ScmAllowed | 2025-05-01 | web 10.1.0 | 2025-03-01 |
| operationalinsights:Workspace | 2023-09-01 | loganalytics 13.1.1 | 2025-07-01 |
| applicationinsights:Component | 2020-02-02 | applicationinsights 4.1.0 | 2020-02-02 |
| eventgrid:SystemTopic, *EventSubscription, Topic | 2025-02-15 | eventgrid 10.4.0 | 2025-02-15 |
| monitor:ActionGroup | 2024-10-01-preview | monitor 6.0.2 | 2023-01-01 |
| monitor:MetricAlert | 2018-03-01 | monitor 6.0.2 | 2018-03-01 |
| monitor:ScheduledQueryRule | 2025-01-01-preview | monitor 6.0.2 | 2022-08-01-preview |
| monitor:DiagnosticSetting | 2021-05-01-preview | monitor 6.0.2 | 2021-05-01-preview |
| authorization:RoleAssignment | 2022-04-01 | authorization 4.0.0 | 2022-04-01 |
| authorization:RoleDefinition | 2022-05-01-preview | authorization 4.0.0 | 2022-05-01-preview |
| network:* (7 types) | 2024-05-01 | network 28.1.0 | 2024-05-01 |
| privatedns:PrivateZone, VirtualNetworkLink | 2024-06-01 | privatedns 1.2.0 | 2024-06-01 |

Where the versions differ, the pinned package (or, for resources, its small single-version
release) ships no model of pulumi's version and the closest one it ships is used; the table in
``CONTRACTS`` is the source, and a test below fails when pulumi-azure-native moves to another
version.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.infra.arm_contract import CONTRACTS, check_resource
from tests.infra.harness import ProgramRun, Registration, run_program

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
#: The stacks checked besides the default (public) and the private one: the private one in an
#: existing VNet, and every optional feature switched on (immutability and its lock, an alert
#: email, built-in roles only, an existing resource group, zone redundancy, the inbound
#: allow-list).
STACKS: dict[str, dict[str, Any]] = {
    "private-existing-vnet": {
        "network": "private",
        "existingVnetId": (
            "/subscriptions/00000000-0000-0000-0000-00000000c0de/resourceGroups/rg-spoke"
            "/providers/Microsoft.Network/virtualNetworks/vnet-spoke"
        ),
        "existingIntegrationSubnetName": "snet-functions",
        "existingPrivateEndpointSubnetName": "snet-endpoints",
    },
    "features": {
        "immutabilityDays": 30,
        "lockImmutability": True,
        "alertEmail": "ops@example.com",
        "customRoles": False,
        "resourceGroupName": "rg-shared-telephony",
        "zoneRedundant": True,
        "apiAllowedIpRanges": ["198.51.100.0/24"],
        "apiAllowedServiceTags": ["AzureCloud"],
    },
}


def _azure(registrations: list[Registration]) -> list[Registration]:
    return [r for r in registrations if r.custom and r.type_.startswith("azure-native:")]


@pytest.fixture(scope="module")
def stacks(default_run: ProgramRun, private_run: ProgramRun) -> dict[str, list[Registration]]:
    runs = {name: run_program(config) for name, config in STACKS.items()}
    return {"public": default_run.registrations, "private": private_run.registrations, **runs}


def test_every_registered_type_has_a_contract(stacks: dict[str, list[Registration]]) -> None:
    types = {r.type_ for registrations in stacks.values() for r in _azure(registrations)}
    assert sorted(types - set(CONTRACTS)) == []
    assert sorted(set(CONTRACTS) - types) == [], "a contract for a type nothing registers"


@pytest.mark.parametrize("stack", ["public", "private", *STACKS])
def test_every_resource_fits_its_model(stacks: dict[str, list[Registration]], stack: str) -> None:
    problems = {
        f"{r.type_}::{r.name}": found
        for r in _azure(stacks[stack])
        if (found := check_resource(r.type_, r.inputs))
    }
    assert problems == {}


_PULUMI_VERSION = re.compile(r"Uses Azure REST API version (\S+?)\.\s")


@pytest.mark.parametrize("type_", sorted(CONTRACTS))
def test_contract_matches_the_pulumi_and_model_api_versions(type_: str) -> None:
    contract = CONTRACTS[type_]
    _, module, name = type_.split(":")
    source = inspect.getsource(
        getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
    )
    assert _PULUMI_VERSION.search(source)[1] == contract.pulumi_api_version  # type: ignore[index]
    assert f"{contract.package}\n" in REQUIREMENTS.read_text(), contract.package
    package = contract.models.removesuffix(".models")
    versioned = re.search(r"\.v(\d{4}_\d{2}_\d{2}(?:_preview)?)$", package)
    if versioned:
        assert versioned[1].replace("_", "-") == contract.model_api_version
        return
    # A single-version package: its operations send the model's api-version.
    operations = resources.files(importlib.import_module(package)) / "operations"
    sent = {
        version
        for entry in operations.iterdir()
        if entry.name.endswith(".py")
        for version in re.findall(r'"api-version", "([0-9a-z-]+)"', entry.read_text())
    }
    assert contract.model_api_version in sent, sorted(sent)


# --- the check fails for each kind of mistake ---------------------------------------------------


def _inputs(stacks: dict[str, list[Registration]], type_: str) -> dict[str, Any]:
    registration = next(r for r in stacks["private"] if r.type_ == type_)
    assert check_resource(type_, registration.inputs) == []
    return copy.deepcopy(registration.inputs)


def test_a_misspelled_property_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:storage:StorageAccount")
    inputs["minimumTlsVerison"] = inputs.pop("minimumTlsVersion")
    assert check_resource("azure-native:storage:StorageAccount", inputs) == [
        "minimumTlsVerison: unknown property of StorageAccountCreateParameters"
    ]


def test_a_misspelled_nested_property_of_a_network_resource_fails(
    stacks: dict[str, list[Registration]],
) -> None:
    inputs = _inputs(stacks, "azure-native:network:Subnet")
    inputs["delegations"][0]["serviceNme"] = inputs["delegations"][0].pop("serviceName")
    assert check_resource("azure-native:network:Subnet", inputs) == [
        "delegations[0].serviceNme: unknown property of Delegation"
    ]


def test_a_wrong_enum_value_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:storage:StorageAccount")
    inputs["networkRuleSet"]["defaultAction"] = "Block"
    assert check_resource("azure-native:storage:StorageAccount", inputs) == [
        "networkRuleSet.defaultAction: 'Block' is not one of DefaultAction: ['Allow', 'Deny']"
    ]


def test_a_wrong_enum_value_in_a_polymorphic_field_fails(
    stacks: dict[str, list[Registration]],
) -> None:
    inputs = _inputs(stacks, "azure-native:monitor:MetricAlert")
    inputs["criteria"]["allOf"][0]["timeAggregation"] = "Median"
    [problem] = check_resource("azure-native:monitor:MetricAlert", inputs)
    assert problem.startswith("criteria.allOf[0].timeAggregation: 'Median' is not one of")


def test_a_read_only_field_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:web:WebApp")
    inputs["defaultHostName"] = "elsewhere.example.com"
    assert check_resource("azure-native:web:WebApp", inputs) == [
        "defaultHostName: read-only in Site, ARM ignores or refuses it"
    ]


def test_a_missing_required_field_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:storage:StorageAccount")
    del inputs["kind"]
    assert check_resource("azure-native:storage:StorageAccount", inputs) == [
        "StorageAccountCreateParameters: required kind is missing"
    ]


def test_a_value_beyond_a_declared_limit_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:storage:BlobServiceProperties")
    inputs["deleteRetentionPolicy"]["days"] = 400
    assert check_resource("azure-native:storage:BlobServiceProperties", inputs) == [
        "deleteRetentionPolicy.days: 400 is above the maximum 365"
    ]


def test_a_wrong_type_fails(stacks: dict[str, list[Registration]]) -> None:
    inputs = _inputs(stacks, "azure-native:privatedns:VirtualNetworkLink")
    inputs["registrationEnabled"] = "false"
    assert check_resource("azure-native:privatedns:VirtualNetworkLink", inputs) == [
        "registrationEnabled: 'false' is not a boolean"
    ]
