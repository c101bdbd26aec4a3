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
PRIVATE_ENDPOINTS_ONLY = {"publicNetworkAccess": "Disabled"}
SUBSCRIPTION = baseline.SYSTEM_TOPIC_EVENT_SUBSCRIPTION


def _with_props(item: StackResource, **props: Any) -> StackResource:
    return StackResource(
        type_=item.type_,
        urn=item.urn,
        props={**item.props, **props},
        dependencies=item.dependencies,
        parent=item.parent,
    )


def _endpoints(account: StackResource, sub_resources: tuple[str, ...]) -> list[StackResource]:
    """Each endpoint with the DNS zone group that writes its A record."""
    label = account.urn.rsplit("::", 1)[-1]
    made = []
    for sub in sub_resources:
        endpoint = resource(
            baseline.PRIVATE_ENDPOINT,
            f"{label}-{sub}-pe",
            {"privateLinkServiceConnections": [{"name": sub, "groupIds": [sub]}]},
            depends_on=(account,),
        )
        zone_group = resource(
            baseline.PRIVATE_DNS_ZONE_GROUP,
            f"{label}-{sub}-dns",
            {"privateDnsZoneConfigs": [{"name": sub, "privateDnsZoneId": f"zone-{sub}"}]},
            depends_on=(endpoint,),
        )
        made += [endpoint, zone_group]
    return made


def ingress_stack(*, account_props: dict[str, Any] | None = None) -> list[StackResource]:
    """The ingress account: the events queue, the dead-letter container the subscription names,
    and the subscription that delivers and dead-letters there with the topic's identity."""
    account = resource(
        baseline.STORAGE_ACCOUNT,
        "ingress",
        {**examples.storage_account(), **(account_props or TRUSTED_SERVICES_ONLY)},
    )
    queue = resource(
        baseline.QUEUE,
        "ingress-events",
        {"accountName": None, "queueName": "recording-events"},
        depends_on=(account,),
    )
    dead_letters = resource(
        baseline.BLOB_CONTAINER,
        "ingress-dead-letters",
        {"accountName": None, "containerName": "dead-letters"},
        depends_on=(account,),
    )
    subscription = resource(SUBSCRIPTION, "to-queue", examples.event_subscription())
    return [account, queue, dead_letters, subscription]


def private_stack(
    *,
    archive_endpoints: tuple[str, ...] = ("blob", "table"),
    ingress_endpoints: tuple[str, ...] = ("blob", "queue"),
    runtime_endpoints: tuple[str, ...] = ("blob", "table"),
) -> list[StackResource]:
    """Archive and runtime closed to public networks, the ingress account behind its firewall,
    each with its endpoints, and a VNet-integrated app."""
    archive = archive_stack()
    archive[0] = _with_props(archive[0], **PRIVATE_ENDPOINTS_ONLY)
    ingress = ingress_stack()
    runtime = resource(
        baseline.STORAGE_ACCOUNT,
        "runtime",
        {**examples.storage_account(), **PRIVATE_ENDPOINTS_ONLY},
    )
    app, ftp, scm = app_stack()
    app = _with_props(app, virtualNetworkSubnetId=None)
    return [
        *archive,
        *_endpoints(archive[0], archive_endpoints),
        *ingress,
        *_endpoints(ingress[0], ingress_endpoints),
        runtime,
        *_endpoints(runtime, runtime_endpoints),
        app,
        ftp,
        scm,
    ]


def _replaced(stack: list[StackResource], new: StackResource) -> list[StackResource]:
    assert any(r.urn == new.urn for r in stack)
    return [new if r.urn == new.urn else r for r in stack]


def _account(stack: list[StackResource], label: str) -> StackResource:
    [found] = [r for r in stack if r.urn == f"{PREFIX}{baseline.STORAGE_ACCOUNT}::{label}"]
    return found


def _assert_only_network_violation(label: str, props: dict[str, Any], message: str) -> None:
    """The account ``label`` with ``props`` breaks the no-public-network rule, and only it."""
    stack = private_stack()
    account = _account(stack, label)
    stack = _replaced(
        stack, StackResource(account.type_, account.urn, {**examples.storage_account(), **props})
    )
    found = baseline.stack_violations(stack)
    assert set(found) == {"private-storage-no-public-network"}
    [violation] = found["private-storage-no-public-network"]
    assert violation.urn == account.urn
    assert message in violation.message


def test_private_stack_with_closed_storage_and_all_endpoints_is_compliant() -> None:
    stack = private_stack()
    assert baseline.stack_violations(stack) == {}
    assert baseline.is_ingress_account(_account(stack, "ingress"), stack)
    assert not baseline.is_ingress_account(_account(stack, "archive"), stack)
    assert not baseline.is_ingress_account(_account(stack, "runtime"), stack)


def test_a_public_stack_is_not_held_to_the_private_rules() -> None:
    """No endpoint and no VNet-integrated app: an open storage account is the public mode."""
    assert not baseline.is_private_stack(archive_stack() + app_stack())
    assert baseline.stack_violations(archive_stack() + app_stack()) == {}


@pytest.mark.parametrize("label", ["archive", "runtime"])
@pytest.mark.parametrize(
    "props",
    [TRUSTED_SERVICES_ONLY, {"publicNetworkAccess": "Enabled"}],
    ids=["trusted-services-firewall", "open"],
)
def test_an_account_beyond_the_ingress_must_disable_public_network_access(
    label: str, props: dict[str, Any]
) -> None:
    """The landing-zone policy b2982f36 refuses any account with public network access: only
    the ingress account, which holds no media, keeps it (behind its firewall)."""
    _assert_only_network_violation(label, props, "it must be 'Disabled'")


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
def test_an_ingress_account_reachable_from_networks_is_a_violation(
    props: dict[str, Any], message: str
) -> None:
    _assert_only_network_violation("ingress", props, message)


@pytest.mark.parametrize(
    "extra",
    [
        (baseline.TABLE, {"accountName": None, "tableName": "recordings"}),
        (baseline.BLOB_CONTAINER, {"accountName": None, "containerName": "recordings"}),
    ],
    ids=["a-table", "a-container-nothing-dead-letters-to"],
)
def test_an_account_holding_more_than_event_ingress_loses_the_firewall_exception(
    extra: tuple[str, dict[str, Any]],
) -> None:
    stack = private_stack()
    ingress = _account(stack, "ingress")
    child = resource(extra[0], "ingress-extra", extra[1], depends_on=(ingress,))
    stack = [*stack, child]
    assert not baseline.is_ingress_account(ingress, stack)
    found = baseline.stack_violations(stack)
    [violation] = found["private-storage-no-public-network"]
    assert violation.urn == ingress.urn
    assert "it must be 'Disabled'" in violation.message


def test_disabled_public_network_access_is_compliant_without_a_firewall() -> None:
    stack = private_stack()
    account = _account(stack, "ingress")
    stack = _replaced(
        stack,
        StackResource(
            account.type_, account.urn, {**examples.storage_account(), **PRIVATE_ENDPOINTS_ONLY}
        ),
    )
    assert baseline.stack_violations(stack) == {}


@pytest.mark.parametrize(
    ("label", "endpoints", "missing"),
    [
        ("archive", {"archive_endpoints": ("blob",)}, "table"),
        ("archive", {"archive_endpoints": ("table",)}, "blob"),
        ("ingress", {"ingress_endpoints": ("blob",)}, "queue"),
        ("ingress", {"ingress_endpoints": ("queue",)}, "blob"),
        ("runtime", {"runtime_endpoints": ("blob",)}, "table"),
        ("runtime", {"runtime_endpoints": ()}, "blob, table"),
    ],
)
def test_a_missing_endpoint_on_any_account_is_a_violation(
    label: str, endpoints: dict[str, tuple[str, ...]], missing: str
) -> None:
    stack = private_stack(**endpoints)
    found = baseline.stack_violations(stack)
    assert set(found) == {"private-storage-endpoints-present"}
    [violation] = found["private-storage-endpoints-present"]
    assert violation.urn == _account(stack, label).urn
    assert f"no private endpoint for {missing} (" in violation.message


def test_an_endpoint_of_another_account_does_not_count() -> None:
    stack = private_stack(archive_endpoints=("blob",))
    runtime = _account(stack, "runtime")
    table_elsewhere = _endpoints(runtime, ("table",))[0]
    table_elsewhere = StackResource(
        table_elsewhere.type_,
        table_elsewhere.urn.replace("runtime-table", "extra-table"),
        table_elsewhere.props,
        table_elsewhere.dependencies,
    )
    found = baseline.stack_violations([*stack, table_elsewhere])
    [violation] = found["private-storage-endpoints-present"]
    assert "no private endpoint for table" in violation.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("deadLetterWithResourceIdentity.identity.type", "UserAssigned"),
            "deadLetterWithResourceIdentity.identity.type is 'UserAssigned'",
        ),
        (
            ("deliveryWithResourceIdentity.identity.type", "UserAssigned"),
            "deliveryWithResourceIdentity.identity.type is 'UserAssigned'",
        ),
    ],
)
def test_event_grid_with_another_identity_is_a_violation(
    change: tuple[str, str], message: str
) -> None:
    stack = private_stack()
    [subscription] = [r for r in stack if r.type_ == SUBSCRIPTION]
    props = examples.set_path(examples.event_subscription(), *change)
    stack = _replaced(stack, StackResource(subscription.type_, subscription.urn, props))
    found = baseline.stack_violations(stack)
    assert set(found) == {"private-event-delivery-system-identity"}
    [violation] = found["private-event-delivery-system-identity"]
    assert violation.urn == subscription.urn
    assert message in violation.message


def test_event_grid_without_an_identity_is_a_violation() -> None:
    """Plain destinations use no identity at all: a firewall refuses them."""
    stack = private_stack()
    [subscription] = [r for r in stack if r.type_ == SUBSCRIPTION]
    good = examples.event_subscription()
    props = {
        **{k: v for k, v in good.items() if not k.endswith("WithResourceIdentity")},
        "destination": good["deliveryWithResourceIdentity"]["destination"],
        "deadLetterDestination": good["deadLetterWithResourceIdentity"]["deadLetterDestination"],
    }
    stack = _replaced(stack, StackResource(subscription.type_, subscription.urn, props))
    found = baseline.stack_violations(stack)
    assert set(found) == {"private-event-delivery-system-identity"}
    messages = [v.message for v in found["private-event-delivery-system-identity"]]
    assert len(messages) == 2
    assert any("deadLetterDestination is set" in m for m in messages)
    assert any("destination is set" in m and "delivery to storage" in m for m in messages)


def test_a_webhook_subscription_needs_no_delivery_identity() -> None:
    stack = private_stack()
    webhook = examples.event_subscription()
    del webhook["deliveryWithResourceIdentity"]
    webhook["destination"] = {"endpointType": "WebHook", "endpointUrl": "https://example.com/e"}
    extra = resource(SUBSCRIPTION, "to-webhook", webhook)
    assert baseline.stack_violations([*stack, extra]) == {}


def test_a_public_stack_may_deliver_without_a_system_identity() -> None:
    subscription = resource(
        SUBSCRIPTION,
        "to-queue",
        examples.set_path(
            examples.event_subscription(),
            "deliveryWithResourceIdentity.identity.type",
            "UserAssigned",
        ),
    )
    assert baseline.stack_violations([*archive_stack(), *app_stack(), subscription]) == {}


def test_private_stack_with_a_web_app_outside_the_vnet_is_a_violation() -> None:
    stack = private_stack()
    apps = [r for r in stack if r.type_ == baseline.WEB_APP]
    stack = [r for r in stack if r.type_ != baseline.WEB_APP]
    outside = StackResource(type_=apps[0].type_, urn=apps[0].urn, props=examples.web_app())
    found = baseline.stack_violations([*stack, outside])
    assert set(found) == {"private-web-apps-vnet-integrated"}
    assert found["private-web-apps-vnet-integrated"][0].urn == outside.urn
