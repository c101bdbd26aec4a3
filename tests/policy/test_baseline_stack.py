"""Stack rules: a recordings account needs its lifecycle policy and soft delete; each web app
needs both basic-publishing-credential switches."""

from __future__ import annotations

from typing import Any

import pytest

from policy import baseline
from policy.baseline import StackResource
from tests.policy import examples

PREFIX = "urn:pulumi:dev::acs-call-recording::"


def resource(
    type_: str,
    name: str,
    props: dict[str, Any],
    *,
    depends_on: tuple[StackResource, ...] = (),
) -> StackResource:
    return StackResource(
        type_=type_,
        urn=f"{PREFIX}{type_}::{name}",
        props=props,
        dependencies=frozenset(d.urn for d in depends_on),
    )


def archive_stack(*, linked_by: str = "dependency") -> list[StackResource]:
    """The archive account, its recordings container, blob service and lifecycle policy.

    ``linked_by="dependency"`` mirrors a real preview (the account is autonamed, its name is
    unknown, children depend on it); ``"name"`` mirrors explicit account names.
    """
    account_props = examples.storage_account()
    if linked_by == "name":
        account_props["accountName"] = "archive"
    account = resource(baseline.STORAGE_ACCOUNT, "archive", account_props)
    depends = (account,) if linked_by == "dependency" else ()
    child_name = {"accountName": "archive"} if linked_by == "name" else {"accountName": None}
    container = resource(
        baseline.BLOB_CONTAINER,
        "archive-recordings",
        {**child_name, "containerName": "recordings"},
        depends_on=depends,
    )
    blob_service = resource(
        baseline.BLOB_SERVICE_PROPERTIES,
        "archive-blob-service",
        {**examples.blob_service_properties(), **child_name},
        depends_on=depends,
    )
    lifecycle = resource(
        baseline.MANAGEMENT_POLICY,
        "archive-lifecycle",
        {**examples.management_policy(), **child_name},
        depends_on=depends,
    )
    return [account, container, blob_service, lifecycle]


def app_stack() -> list[StackResource]:
    app = resource(baseline.WEB_APP, "api", {**examples.web_app(), "name": None})
    ftp = resource(
        baseline.WEB_APP_FTP_ALLOWED, "api-ftp", {"allow": False, "name": None}, depends_on=(app,)
    )
    scm = resource(
        baseline.WEB_APP_SCM_ALLOWED, "api-scm", {"allow": False, "name": None}, depends_on=(app,)
    )
    return [app, ftp, scm]


def without(resources: list[StackResource], type_: str) -> list[StackResource]:
    return [r for r in resources if r.type_ != type_]


@pytest.mark.parametrize("linked_by", ["dependency", "name"])
def test_complete_stack_has_no_violation(linked_by: str) -> None:
    assert baseline.stack_violations(archive_stack(linked_by=linked_by) + app_stack()) == {}


@pytest.mark.parametrize("linked_by", ["dependency", "name"])
def test_recordings_account_without_lifecycle_policy_is_a_violation(linked_by: str) -> None:
    stack = without(archive_stack(linked_by=linked_by), baseline.MANAGEMENT_POLICY)
    found = baseline.stack_violations(stack)
    assert set(found) == {"recordings-lifecycle-policy-present"}
    [violation] = found["recordings-lifecycle-policy-present"]
    assert violation.urn == stack[0].urn
    assert "archive holds recordings but has no lifecycle policy" in violation.message


def test_recordings_account_without_blob_service_is_a_violation() -> None:
    found = baseline.stack_violations(without(archive_stack(), baseline.BLOB_SERVICE_PROPERTIES))
    assert set(found) == {"recordings-soft-delete-present"}


def test_lifecycle_policy_of_another_account_does_not_count() -> None:
    """The runtime account's policy must not satisfy the archive account's requirement."""
    archive = without(archive_stack(), baseline.MANAGEMENT_POLICY)
    runtime = resource(baseline.STORAGE_ACCOUNT, "runtime", examples.storage_account())
    runtime_policy = resource(
        baseline.MANAGEMENT_POLICY,
        "runtime-lifecycle",
        {**examples.management_policy(), "accountName": None},
        depends_on=(runtime,),
    )
    found = baseline.stack_violations([*archive, runtime, runtime_policy])
    assert [v.urn for v in found["recordings-lifecycle-policy-present"]] == [archive[0].urn]


def test_account_without_recordings_needs_no_lifecycle_policy() -> None:
    runtime = resource(baseline.STORAGE_ACCOUNT, "runtime", examples.storage_account())
    package = resource(
        baseline.BLOB_CONTAINER,
        "runtime-app-package",
        {"containerName": "app-package", "accountName": None},
        depends_on=(runtime,),
    )
    assert baseline.stack_violations([runtime, package]) == {}


def test_unattributable_recordings_container_needs_some_lifecycle_policy() -> None:
    container = resource(baseline.BLOB_CONTAINER, "recordings", {"containerName": "recordings"})
    found = baseline.stack_violations([container])
    assert set(found) == {
        "recordings-lifecycle-policy-present",
        "recordings-soft-delete-present",
    }
    assert found["recordings-lifecycle-policy-present"][0].urn is None


@pytest.mark.parametrize("missing", [baseline.WEB_APP_FTP_ALLOWED, baseline.WEB_APP_SCM_ALLOWED])
def test_web_app_without_credentials_switch_is_a_violation(missing: str) -> None:
    stack = without(app_stack(), missing)
    found = baseline.stack_violations(stack)
    assert set(found) == {"basic-publishing-credentials-present"}
    [violation] = found["basic-publishing-credentials-present"]
    assert missing in violation.message
    assert violation.urn == stack[0].urn


def test_credentials_switch_of_another_app_does_not_count() -> None:
    app, ftp, scm = app_stack()
    other = resource(baseline.WEB_APP, "other", {**examples.web_app(), "name": None})
    found = baseline.stack_violations([app, ftp, scm, other])
    assert {v.urn for v in found["basic-publishing-credentials-present"]} == {other.urn}


def test_credentials_switch_linked_by_known_name() -> None:
    app = resource(baseline.WEB_APP, "api", examples.web_app())
    ftp = resource(baseline.WEB_APP_FTP_ALLOWED, "ftp", examples.publishing_credentials())
    scm = resource(baseline.WEB_APP_SCM_ALLOWED, "scm", examples.publishing_credentials())
    assert baseline.stack_violations([app, ftp, scm]) == {}


# --- private stacks -----------------------------------------------------------------------------

TRUSTED_SERVICES_ONLY = {
    "publicNetworkAccess": "Enabled",
    "networkRuleSet": {
        "defaultAction": "Deny",
        "bypass": "AzureServices",
        "ipRules": [],
        "virtualNetworkRules": [],
    },
}


def private_stack(
    *, sub_resources: tuple[str, ...] = ("blob", "queue", "table")
) -> list[StackResource]:
    """The archive behind its firewall with one endpoint per sub-resource, and a VNet app."""
    archive = archive_stack()
    account = archive[0]
    archive[0] = StackResource(
        type_=account.type_, urn=account.urn, props={**account.props, **TRUSTED_SERVICES_ONLY}
    )
    endpoints = [
        resource(
            baseline.PRIVATE_ENDPOINT,
            f"archive-{sub}-pe",
            {"privateLinkServiceConnections": [{"name": sub, "groupIds": [sub]}]},
            depends_on=(archive[0],),
        )
        for sub in sub_resources
    ]
    app, ftp, scm = app_stack()
    app = StackResource(
        type_=app.type_, urn=app.urn, props={**app.props, "virtualNetworkSubnetId": None}
    )
    return [*archive, *endpoints, app, ftp, scm]


def test_private_stack_with_closed_storage_and_all_endpoints_is_compliant() -> None:
    assert baseline.stack_violations(private_stack()) == {}


def test_a_public_stack_is_not_held_to_the_private_rules() -> None:
    """No endpoint and no VNet-integrated app: an open storage account is the public mode."""
    assert not baseline.is_private_stack(archive_stack() + app_stack())
    assert baseline.stack_violations(archive_stack() + app_stack()) == {}


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"publicNetworkAccess": "Enabled"}, "networkRuleSet is not set"),
        (
            {**TRUSTED_SERVICES_ONLY, "networkRuleSet": {"defaultAction": "Allow"}},
            "networkRuleSet.defaultAction is 'Allow'",
        ),
        (
            {
                **TRUSTED_SERVICES_ONLY,
                "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "1.2.3.4"}]},
            },
            "networkRuleSet.ipRules admits 1 network(s)",
        ),
    ],
)
def test_private_stack_with_reachable_storage_is_a_violation(
    props: dict[str, Any], message: str
) -> None:
    stack = private_stack()
    account = stack[0]
    stack[0] = StackResource(
        type_=account.type_, urn=account.urn, props={**examples.storage_account(), **props}
    )
    found = baseline.stack_violations(stack)
    assert set(found) == {"private-storage-no-public-network"}
    [violation] = found["private-storage-no-public-network"]
    assert violation.urn == account.urn
    assert message in violation.message


def test_disabled_public_network_access_is_compliant_without_a_firewall() -> None:
    stack = private_stack()
    account = stack[0]
    stack[0] = StackResource(
        type_=account.type_,
        urn=account.urn,
        props={**examples.storage_account(), "publicNetworkAccess": "Disabled"},
    )
    assert baseline.stack_violations(stack) == {}


def test_missing_queue_endpoint_on_the_recordings_account_is_a_violation() -> None:
    found = baseline.stack_violations(private_stack(sub_resources=("blob", "table")))
    assert set(found) == {"private-recordings-endpoints-present"}
    [violation] = found["private-recordings-endpoints-present"]
    assert "no private endpoint for queue" in violation.message


def test_an_endpoint_of_another_account_does_not_count() -> None:
    stack = private_stack(sub_resources=("blob", "queue"))
    other = resource(baseline.STORAGE_ACCOUNT, "runtime", examples.storage_account())
    table_elsewhere = resource(
        baseline.PRIVATE_ENDPOINT,
        "runtime-table-pe",
        {"privateLinkServiceConnections": [{"name": "t", "groupIds": ["table"]}]},
        depends_on=(other,),
    )
    found = baseline.stack_violations([*stack, table_elsewhere])
    assert (
        "no private endpoint for table" in found["private-recordings-endpoints-present"][0].message
    )


def test_private_stack_with_a_web_app_outside_the_vnet_is_a_violation() -> None:
    stack = private_stack()
    apps = [r for r in stack if r.type_ == baseline.WEB_APP]
    stack = [r for r in stack if r.type_ != baseline.WEB_APP]
    outside = StackResource(type_=apps[0].type_, urn=apps[0].urn, props=examples.web_app())
    found = baseline.stack_violations([*stack, outside])
    assert set(found) == {"private-web-apps-vnet-integrated"}
    assert found["private-web-apps-vnet-integrated"][0].urn == outside.urn
