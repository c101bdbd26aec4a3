"""The CrossGuard adapter: the policies the pack registers, fed the way the engine feeds them
(properties behind pulumi_policy's unknown-checking proxy), without constructing a PolicyPack."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy import baseline
from policy.policies import build_policies, plain
from tests.policy import examples

URN = "urn:pulumi:dev::acs-call-recording::azure-native:storage:StorageAccount::archive"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        additional_secret_outputs=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
    )


def policies_by_name() -> dict[str, Any]:
    return {p.name: p for p in build_policies()}


def run_resource_policies(resource_type: str, props: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for policy in build_policies():
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        args = ResourceValidationArgs(
            resource_type, unknown_checking_proxy(props), URN, "archive", _opts(), None
        )
        policy.validate(
            args, lambda message, _urn, name=policy.name: found.setdefault(name, []).append(message)
        )
    return found


def test_pack_registers_every_baseline_rule_once_as_mandatory() -> None:
    policies = build_policies()
    names = [p.name for p in policies]
    expected = [r.name for r in baseline.RESOURCE_RULES] + [r.name for r in baseline.STACK_RULES]
    assert names == expected
    assert len(set(names)) == len(names)
    assert {p.enforcement_level for p in policies} == {EnforcementLevel.MANDATORY}
    stack = {p.name for p in policies if isinstance(p, StackValidationPolicy)}
    assert stack == {r.name for r in baseline.STACK_RULES}


def test_plain_unwraps_proxies_and_turns_unknowns_into_none() -> None:
    proxied = unknown_checking_proxy(
        {
            "a": UNKNOWN_STRING_VALUE,
            "b": {"c": [1, UNKNOWN_BOOLEAN_VALUE, {"d": "x"}]},
            "s": Secret("hidden"),
        }
    )
    assert plain(proxied) == {"a": None, "b": {"c": [1, None, {"d": "x"}]}, "s": "hidden"}


def test_compliant_storage_account_passes_through_the_adapter() -> None:
    assert run_resource_policies(baseline.STORAGE_ACCOUNT, examples.storage_account()) == {}


def test_violation_is_reported_through_the_adapter() -> None:
    props = {**examples.storage_account(), "allowBlobPublicAccess": True}
    found = run_resource_policies(baseline.STORAGE_ACCOUNT, props)
    assert found == {
        "storage-account-hardening": [
            "allowBlobPublicAccess is True; it must be false (no anonymous blob access)"
        ]
    }


def test_one_unknown_value_does_not_hide_other_violations() -> None:
    """The raw proxy would raise on the unknown value and skip the whole policy."""
    props = {
        **examples.storage_account(),
        "allowSharedKeyAccess": UNKNOWN_BOOLEAN_VALUE,
        "minimumTlsVersion": "TLS1_0",
    }
    found = run_resource_policies(baseline.STORAGE_ACCOUNT, props)
    assert list(found) == ["storage-account-hardening"]
    assert found["storage-account-hardening"][0].startswith("minimumTlsVersion is 'TLS1_0'")


def test_policy_for_other_types_stays_silent() -> None:
    assert run_resource_policies("azure-native:storage:Queue", {"queueName": "events"}) == {}


def _policy_resource(
    type_: str, name: str, props: dict[str, Any], dependencies: list[PolicyResource]
) -> PolicyResource:
    return PolicyResource(
        type_,
        unknown_checking_proxy(props),
        f"urn:pulumi:dev::acs-call-recording::{type_}::{name}",
        name,
        _opts(),
        None,
        None,
        dependencies,
        {},
    )


@pytest.mark.parametrize("with_lifecycle", [True, False])
def test_stack_policy_links_children_by_dependency(with_lifecycle: bool) -> None:
    account = _policy_resource(
        baseline.STORAGE_ACCOUNT,
        "archive",
        {**examples.storage_account(), "accountName": UNKNOWN_STRING_VALUE},
        [],
    )
    child = {"accountName": UNKNOWN_STRING_VALUE}
    resources = [
        account,
        _policy_resource(
            baseline.BLOB_CONTAINER, "rec", {**child, "containerName": "recordings"}, [account]
        ),
    ]
    if with_lifecycle:
        resources.append(
            _policy_resource(
                baseline.MANAGEMENT_POLICY,
                "lifecycle",
                {**examples.management_policy(), **child},
                [account],
            )
        )
    policy = policies_by_name()["recordings-lifecycle-policy-present"]
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources), lambda m, u: reported.append((m, u)))
    if with_lifecycle:
        assert reported == []
    else:
        assert [urn for _, urn in reported] == [account.urn]
