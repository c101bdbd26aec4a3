"""scripts/arm_export.py: the program under mocks as an ARM template a scanner can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import arm_export
from tests.infra.harness import ProgramRun

SUBNET_ID = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet1"
    "/subnets/functions-integration"
)
ASSIGNMENT_ID = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"
    "/providers/Microsoft.Authorization/roleAssignments/r1"
)


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        (SUBNET_ID, ("Microsoft.Network/virtualNetworks/subnets", "vnet1/functions-integration")),
        (ASSIGNMENT_ID, ("Microsoft.Authorization/roleAssignments", "r1")),
        ("/subscriptions/s/resourceGroups/rg", ("Microsoft.Resources/resourceGroups", "rg")),
    ],
)
def test_arm_type_and_name_of_an_id(resource_id: str, expected: tuple[str, str]) -> None:
    assert arm_export.arm_type_and_name(resource_id) == expected


def test_template_has_every_azure_resource_with_arm_names(default_run: ProgramRun) -> None:
    template = arm_export.arm_template(default_run.registrations)
    azure = [r for r in default_run.registrations if r.type_.startswith("azure-native:")]
    assert len(template["resources"]) == len(azure)
    archive = next(
        r
        for r in template["resources"]
        if r["type"] == "Microsoft.Storage/storageAccounts" and r["name"].startswith("acsrecarch")
    )
    # ARM's names, not Pulumi's: supportsHttpsTrafficOnly is Pulumi's enableHttpsTrafficOnly.
    assert archive["apiVersion"] == "2024-01-01"
    assert archive["properties"]["supportsHttpsTrafficOnly"] is True
    assert archive["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert archive["sku"] == {"name": "Standard_GRS"}


def test_private_export_writes_the_network_with_arm_nesting(tmp_path: Path) -> None:
    out = tmp_path / "arm-private.json"
    assert arm_export.main(["--network", "private", "--out", str(out)]) == 0
    resources = json.loads(out.read_text())["resources"]
    [archive] = [
        r
        for r in resources
        if r["type"] == "Microsoft.Storage/storageAccounts" and r["name"].startswith("acsrecarch")
    ]
    assert archive["properties"]["networkAcls"]["defaultAction"] == "Deny"
    [integration] = [r for r in resources if r["name"].endswith("/functions-integration")]
    assert integration["type"] == "Microsoft.Network/virtualNetworks/subnets"
    assert integration["properties"]["delegations"] == [
        {"name": "flex-consumption", "properties": {"serviceName": "Microsoft.App/environments"}}
    ]
    endpoints = [r for r in resources if r["type"] == "Microsoft.Network/privateEndpoints"]
    assert len(endpoints) == 6
