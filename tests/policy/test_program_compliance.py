"""The policy pack against what the real program registers (tests/infra/harness.py, under mocks):
no violation as it stands, and each baseline property flipped in the captured inputs is caught.

A property that is unknown under the mocks would make these tests pass for nothing, so every
flip first asserts that the program really sets the value it is about to break."""

from __future__ import annotations

import copy
import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.config import ConfigError
from policy import baseline
from policy.baseline import StackResource
from policy.policies import build_policies
from tests.infra.harness import Registration, run_program

SA = baseline.STORAGE_ACCOUNT
BSP = baseline.BLOB_SERVICE_PROPERTIES
APP = baseline.WEB_APP
SUB = baseline.SYSTEM_TOPIC_EVENT_SUBSCRIPTION
MP = baseline.MANAGEMENT_POLICY
RA = baseline.ROLE_ASSIGNMENT
DL = "deadLetterWithResourceIdentity.deadLetterDestination"


@pytest.fixture(scope="module")
def program() -> list[Registration]:
    return run_program()


def azure_resources(registrations: list[Registration]) -> Iterator[Registration]:
    return (r for r in registrations if r.custom and r.type_.startswith("azure-native:"))


def of_type(registrations: list[Registration], type_: str) -> list[Registration]:
    found = [r for r in registrations if r.type_ == type_]
    assert found, f"the program registers no {type_}: the policy would guard nothing"
    return found


def as_stack(registrations: list[Registration]) -> list[StackResource]:
    return [
        StackResource(
            type_=r.type_,
            urn=r.urn,
            props=r.inputs,
            dependencies=frozenset(r.depends_on),
            parent=r.parent or None,
        )
        for r in registrations
    ]


def resource_findings(registrations: list[Registration]) -> dict[str, dict[str, list[str]]]:
    findings = {}
    for r in azure_resources(registrations):
        found = baseline.resource_violations(r.type_, r.inputs)
        if found:
            findings[r.urn] = found
    return findings


def test_default_program_has_no_violation(program: list[Registration]) -> None:
    assert resource_findings(program) == {}
    assert baseline.stack_violations(as_stack(program)) == {}


def _options(registration: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=registration.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=registration.parent or None,
    )


def test_pack_policies_report_nothing_for_the_program(program: list[Registration]) -> None:
    """The same check through the CrossGuard policy objects the pack registers."""
    reported: list[tuple[str, str, str | None]] = []
    by_urn = {
        r.urn: PolicyResource(r.type_, r.inputs, r.urn, r.name, _options(r), None, None, [], {})
        for r in program
    }
    for r in program:
        by_urn[r.urn].dependencies = [by_urn[d] for d in r.depends_on if d in by_urn]
    for policy in build_policies():

        def report(message: str, urn: str | None, name: str = policy.name) -> None:
            reported.append((name, message, urn))

        if isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(list(by_urn.values())), report)
            continue
        assert isinstance(policy, ResourceValidationPolicy)
        for r in azure_resources(program):
            args = ResourceValidationArgs(r.type_, r.inputs, r.urn, r.name, _options(r), None)
            policy.validate(args, report)
    assert reported == []


def test_preview_program_has_no_violation() -> None:
    """During preview many inputs are unknown; the pack must not cry wolf (nor crash)."""
    registrations = run_program(preview=True)
    assert resource_findings(registrations) == {}
    assert baseline.stack_violations(as_stack(registrations)) == {}


def test_every_rule_guards_something_in_the_program(program: list[Registration]) -> None:
    for rule in baseline.RESOURCE_RULES:
        assert any(rule.applies(r.type_, r.inputs) for r in azure_resources(program)), rule.name
    accounts = baseline.recording_accounts(as_stack(program))
    assert len(accounts) == 1
    assert accounts[0] is not None, "the recordings container is not linked to its account"
    assert accounts[0].urn.endswith(f"{SA}::acsrecarch")


def test_every_taggable_type_of_the_program_is_listed(program: list[Registration]) -> None:
    """A type missing from TAGGABLE_TYPES would escape the tag rule whenever it sets no tags."""
    for type_ in sorted({r.type_ for r in azure_resources(program)}):
        _, module, name = type_.split(":")
        resource_class = getattr(importlib.import_module(f"pulumi_azure_native.{module}"), name)
        takes_tags = "tags" in inspect.signature(resource_class._internal_init).parameters
        assert takes_tags == (type_ in baseline.TAGGABLE_TYPES), type_


# (type, property path in the captured inputs, insecure value, rule that must fire)
FLIPS = [
    (SA, "enableHttpsTrafficOnly", False, "storage-account-hardening"),
    (SA, "minimumTlsVersion", "TLS1_0", "storage-account-hardening"),
    (SA, "allowBlobPublicAccess", True, "storage-account-hardening"),
    (SA, "allowSharedKeyAccess", True, "storage-account-hardening"),
    (BSP, "deleteRetentionPolicy.enabled", False, "blob-soft-delete"),
    (BSP, "containerDeleteRetentionPolicy.enabled", False, "blob-soft-delete"),
    (APP, "httpsOnly", False, "function-app-hardening"),
    (APP, "siteConfig.minTlsVersion", "1.0", "function-app-hardening"),
    (APP, "identity.type", "None", "function-app-hardening"),
    (baseline.WEB_APP_FTP_ALLOWED, "allow", True, "basic-publishing-credentials-off"),
    (baseline.WEB_APP_SCM_ALLOWED, "allow", True, "basic-publishing-credentials-off"),
    (SUB, f"{DL}.endpointType", "WebHook", "event-subscription-dead-letter-and-retry"),
    (SUB, "retryPolicy.maxDeliveryAttempts", 1, "event-subscription-dead-letter-and-retry"),
    (SUB, "retryPolicy.eventTimeToLiveInMinutes", 0, "event-subscription-dead-letter-and-retry"),
    (MP, "policy.rules", [], "lifecycle-policy-rules"),
    (RA, "principalType", "User", "role-assignment-least-privilege"),
    (
        RA,
        "scope",
        "/subscriptions/00000000-0000-0000-0000-00000000c0de",
        "role-assignment-least-privilege",
    ),
    (SA, "tags.environment", "", "required-tags"),
    (APP, "tags.app", "", "required-tags"),
    ("azure-native:communication:CommunicationService", "tags.managed-by", "", "required-tags"),
]
# (type, property path deleted from the captured inputs, rule that must fire)
REMOVALS = [
    (SA, "allowSharedKeyAccess", "storage-account-hardening"),
    (BSP, "deleteRetentionPolicy", "blob-soft-delete"),
    (APP, "identity", "function-app-hardening"),
    (SUB, "deadLetterWithResourceIdentity", "event-subscription-dead-letter-and-retry"),
    (SUB, "retryPolicy", "event-subscription-dead-letter-and-retry"),
    (RA, "principalType", "role-assignment-least-privilege"),
    ("azure-native:monitor:MetricAlert", "tags", "required-tags"),
]


def _parent_and_leaf(props: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    current = props
    for part in parents:
        current = current[part]
    return current, leaf


def _known_original(registration: Registration, path: str) -> dict[str, Any]:
    props = copy.deepcopy(registration.inputs)
    present, value = baseline.get_path(props, path)
    assert present, f"{registration.urn} does not set {path}"
    assert value is not None, f"{registration.urn}: {path} is unknown under the mocks"
    return props


@pytest.mark.parametrize(("type_", "path", "bad", "rule"), FLIPS)
def test_flipped_property_in_program_inputs_is_caught(
    program: list[Registration], type_: str, path: str, bad: Any, rule: str
) -> None:
    for registration in of_type(program, type_):
        props = _known_original(registration, path)
        parent, leaf = _parent_and_leaf(props, path)
        parent[leaf] = bad
        found = baseline.resource_violations(type_, props)
        assert set(found) == {rule}, (registration.urn, found)
        assert any(path in message for message in found[rule]), found[rule]


@pytest.mark.parametrize(
    ("key", "value"), [("ftpsState", "Disabled"), ("linuxFxVersion", "Python|3.11")]
)
def test_a_site_config_property_flex_refuses_added_to_the_program_app_is_caught(
    program: list[Registration], key: str, value: str
) -> None:
    """The program's app is a Flex Consumption site: ARM refuses these properties there."""
    for registration in of_type(program, APP):
        props = copy.deepcopy(registration.inputs)
        assert key not in props["siteConfig"], registration.urn
        props["siteConfig"][key] = value
        found = baseline.resource_violations(APP, props)
        assert set(found) == {"function-app-hardening"}, (registration.urn, found)
        assert any(f"siteConfig.{key}" in message for message in found["function-app-hardening"])


@pytest.mark.parametrize(("type_", "path", "rule"), REMOVALS)
def test_removed_property_in_program_inputs_is_caught(
    program: list[Registration], type_: str, path: str, rule: str
) -> None:
    for registration in of_type(program, type_):
        props = _known_original(registration, path)
        parent, leaf = _parent_and_leaf(props, path)
        del parent[leaf]
        found = baseline.resource_violations(type_, props)
        assert set(found) == {rule}, (registration.urn, found)


def _without(registrations: list[Registration], type_: str, name: str) -> list[Registration]:
    kept = [r for r in registrations if not (r.type_ == type_ and r.name == name)]
    assert len(kept) == len(registrations) - 1, f"no {type_} named {name} in the program"
    return kept


@pytest.mark.parametrize(
    ("type_", "name", "rule", "offender"),
    [
        (MP, "acsrecarch-lifecycle", "recordings-lifecycle-policy-present", f"{SA}::acsrecarch"),
        (BSP, "acsrecarch-blob-service", "recordings-soft-delete-present", f"{SA}::acsrecarch"),
        (
            baseline.WEB_APP_FTP_ALLOWED,
            "acsrec-func-ftp-basic-auth",
            "basic-publishing-credentials-present",
            f"{APP}::acsrec-func",
        ),
        (
            baseline.WEB_APP_SCM_ALLOWED,
            "acsrec-func-scm-basic-auth",
            "basic-publishing-credentials-present",
            f"{APP}::acsrec-func",
        ),
    ],
)
def test_program_without_a_guarding_resource_is_caught(
    program: list[Registration], type_: str, name: str, rule: str, offender: str
) -> None:
    found = baseline.stack_violations(as_stack(_without(program, type_, name)))
    assert set(found) == {rule}
    assert [v.urn.endswith(offender) for v in found[rule] if v.urn] == [True]


def test_fully_configured_program_has_no_violation() -> None:
    """The options a compliance-minded team turns on keep the baseline too."""
    registrations = run_program(
        {
            "immutabilityDays": 30,
            "alertEmail": "ops@example.com",
            "tags": {"cost-center": "cc-42"},
            "softDeleteRetentionDays": 30,
            "eventMaxDeliveryAttempts": 10,
            "eventTtlMinutes": 120,
        }
    )
    assert resource_findings(registrations) == {}
    assert baseline.stack_violations(as_stack(registrations)) == {}


def test_config_refuses_a_single_delivery_attempt_like_the_pack() -> None:
    """One attempt means no retry at all: the stack config stops it before the pack has to."""
    with pytest.raises(ConfigError, match=r"eventMaxDeliveryAttempts \(1\) must be between 2"):
        run_program({"eventMaxDeliveryAttempts": 1})


# --- the private stack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_program() -> list[Registration]:
    return run_program({"network": "private", "zoneRedundant": True})


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_private_program_has_no_violation(preview: bool) -> None:
    registrations = run_program({"network": "private"}, preview=preview)
    assert baseline.is_private_stack(as_stack(registrations))
    assert resource_findings(registrations) == {}
    assert baseline.stack_violations(as_stack(registrations)) == {}


def test_private_program_taggable_types_are_listed(private_program: list[Registration]) -> None:
    test_every_taggable_type_of_the_program_is_listed(private_program)


def _replace_inputs(
    registrations: list[Registration], type_: str, name: str, **changes: Any
) -> list[Registration]:
    changed = []
    for r in registrations:
        if r.type_ == type_ and r.name == name:
            inputs = copy.deepcopy(r.inputs)
            for key, value in changes.items():
                assert key in inputs, f"{name} does not set {key}"
                if value is None:
                    del inputs[key]
                else:
                    inputs[key] = value
            r = copy.copy(r)
            r.inputs = inputs
        changed.append(r)
    return changed


TRUSTED_FIREWALL = {
    "defaultAction": "Deny",
    "bypass": "AzureServices",
    "ipRules": [],
    "virtualNetworkRules": [],
}


@pytest.mark.parametrize(
    ("account", "changes"),
    [
        ("acsrecingr", {"networkRuleSet": {"defaultAction": "Allow", "bypass": "AzureServices"}}),
        ("acsrecingr", {"networkRuleSet": None}),
        (
            "acsrecingr",
            {
                "networkRuleSet": {
                    **TRUSTED_FIREWALL,
                    "resourceAccessRules": [{"tenantId": "*", "resourceId": "*"}],
                }
            },
        ),
        # Event Grid could not deliver: the stack is private but broken.
        ("acsrecingr", {"networkRuleSet": {**TRUSTED_FIREWALL, "bypass": "None"}}),
        # The layout before the ingress split: the recordings account admitting Event Grid.
        ("acsrecarch", {"publicNetworkAccess": "Enabled", "networkRuleSet": TRUSTED_FIREWALL}),
        ("acsrechost", {"publicNetworkAccess": "Enabled", "networkRuleSet": None}),
    ],
)
def test_private_program_with_a_reachable_account_is_caught(
    private_program: list[Registration], account: str, changes: dict[str, Any]
) -> None:
    broken = _replace_inputs(private_program, SA, account, **changes)
    found = baseline.stack_violations(as_stack(broken))
    assert set(found) == {"private-storage-no-public-network"}
    assert [v.urn.endswith(f"{SA}::{account}") for v in found[next(iter(found))]] == [True]


@pytest.mark.parametrize(
    "endpoint",
    [
        "archive-blob",
        "archive-table",
        "ingress-blob",
        "ingress-queue",
        "runtime-blob",
        "runtime-table",
    ],
)
def test_private_program_without_an_endpoint_is_caught(
    private_program: list[Registration], endpoint: str
) -> None:
    pe = "azure-native:network:PrivateEndpoint"
    broken = _without(private_program, pe, f"acsrec-net-{endpoint}-pe")
    found = baseline.stack_violations(as_stack(broken))
    assert set(found) == {"private-storage-endpoints-present"}
    [violation] = found["private-storage-endpoints-present"]
    label, sub_resource = endpoint.split("-")
    account = {"archive": "acsrecarch", "ingress": "acsrecingr", "runtime": "acsrechost"}[label]
    assert violation.urn is not None and violation.urn.endswith(f"{SA}::{account}")
    assert f"no private endpoint for {sub_resource} (" in violation.message


def test_private_program_with_an_endpoint_without_its_dns_zone_group_is_caught(
    private_program: list[Registration],
) -> None:
    """Without its zone group the endpoint has no A record: the app resolves the account's
    public address, which the firewall refuses."""
    broken = _without(
        private_program, "azure-native:network:PrivateDnsZoneGroup", "acsrec-net-runtime-table-dns"
    )
    found = baseline.stack_violations(as_stack(broken))
    assert set(found) == {"private-storage-endpoints-present"}
    [violation] = found["private-storage-endpoints-present"]
    assert violation.urn is not None and violation.urn.endswith(f"{SA}::acsrechost")
    assert "no private endpoint for table (" in violation.message


def test_the_pack_requires_exactly_the_endpoints_the_program_creates(
    private_program: list[Registration],
) -> None:
    from infra.component import (
        ARCHIVE_SUB_RESOURCES,
        INGRESS_SUB_RESOURCES,
        RUNTIME_SUB_RESOURCES,
    )

    stack = as_stack(private_program)
    required = {
        a.urn.rsplit("::", 1)[-1]: sorted(baseline.required_sub_resources(a, stack))
        for a in stack
        if a.type_ == SA
    }
    assert required == {
        "acsrecarch": sorted(ARCHIVE_SUB_RESOURCES),
        "acsrecingr": sorted(INGRESS_SUB_RESOURCES),
        "acsrechost": sorted(RUNTIME_SUB_RESOURCES),
    }


@pytest.mark.parametrize(
    "wrapper", ["deliveryWithResourceIdentity", "deadLetterWithResourceIdentity"]
)
def test_private_program_delivering_with_another_identity_is_caught(
    private_program: list[Registration], wrapper: str
) -> None:
    [subscription] = of_type(private_program, SUB)
    changed = copy.deepcopy(subscription.inputs[wrapper])
    assert changed["identity"] == {"type": "SystemAssigned"}
    changed["identity"] = {"type": "UserAssigned", "userAssignedIdentity": "/id"}
    broken = _replace_inputs(private_program, SUB, subscription.name, **{wrapper: changed})
    found = baseline.stack_violations(as_stack(broken))
    assert set(found) == {"private-event-delivery-system-identity"}
    [violation] = found["private-event-delivery-system-identity"]
    assert f"{wrapper}.identity.type is 'UserAssigned'" in violation.message


def test_private_program_with_an_app_outside_the_vnet_is_caught(
    private_program: list[Registration],
) -> None:
    broken = _replace_inputs(private_program, APP, "acsrec-func", virtualNetworkSubnetId=None)
    found = baseline.stack_violations(as_stack(broken))
    assert set(found) == {"private-web-apps-vnet-integrated"}


@pytest.mark.parametrize("mode", ["entraId", "both"])
def test_entra_id_programs_have_no_violation(mode: str) -> None:
    """The pack accepts every apiAuth mode the program offers (functionKey is the default)."""
    registrations = run_program(
        {
            "apiAuth": mode,
            "apiTenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "apiAudience": "api://acs-call-recording,11111111-2222-4333-8444-555555555555",
            "apiAllowedClientIds": ["66666666-7777-4888-9999-000000000000"],
            "apiRequiredRole": "Recordings.ReadWrite",
        }
    )
    assert resource_findings(registrations) == {}
    assert baseline.stack_violations(as_stack(registrations)) == {}
