"""Each resource rule against hand-made resources: compliant ones pass, each flip is caught."""

from __future__ import annotations

from typing import Any

import pytest

from policy import baseline
from tests.policy import examples

SA = baseline.STORAGE_ACCOUNT
BSP = baseline.BLOB_SERVICE_PROPERTIES
APP = baseline.WEB_APP
FTP = baseline.WEB_APP_FTP_ALLOWED
SCM = baseline.WEB_APP_SCM_ALLOWED
SUB = baseline.SYSTEM_TOPIC_EVENT_SUBSCRIPTION
MP = baseline.MANAGEMENT_POLICY
RA = baseline.ROLE_ASSIGNMENT
TOPIC = baseline.EVENT_GRID_TOPIC
DL = "deadLetterWithResourceIdentity.deadLetterDestination"


def violations_of(resource_type: str, props: dict[str, Any]) -> dict[str, list[str]]:
    return baseline.resource_violations(resource_type, props)


@pytest.mark.parametrize("resource_type", sorted(examples.COMPLIANT))
def test_compliant_resource_has_no_violation(resource_type: str) -> None:
    assert violations_of(resource_type, examples.COMPLIANT[resource_type]()) == {}


# (type, property path, bad value, rule that must fire, text the message must contain)
FLIPS = [
    (SA, "enableHttpsTrafficOnly", False, "storage-account-hardening", "enableHttpsTrafficOnly"),
    (SA, "minimumTlsVersion", "TLS1_0", "storage-account-hardening", "minimumTlsVersion"),
    (SA, "minimumTlsVersion", "TLS1_1", "storage-account-hardening", "'TLS1_2' or newer"),
    (SA, "allowBlobPublicAccess", True, "storage-account-hardening", "allowBlobPublicAccess"),
    (SA, "allowSharedKeyAccess", True, "storage-account-hardening", "allowSharedKeyAccess"),
    (BSP, "deleteRetentionPolicy.enabled", False, "blob-soft-delete", "deleteRetentionPolicy"),
    (BSP, "deleteRetentionPolicy.days", 0, "blob-soft-delete", "deleteRetentionPolicy.days"),
    (
        BSP,
        "containerDeleteRetentionPolicy.enabled",
        False,
        "blob-soft-delete",
        "containerDeleteRetentionPolicy.enabled",
    ),
    (APP, "httpsOnly", False, "function-app-hardening", "httpsOnly"),
    (APP, "siteConfig.minTlsVersion", "1.0", "function-app-hardening", "minTlsVersion"),
    (APP, "siteConfig.minTlsVersion", "1.1", "function-app-hardening", "'1.2' or newer"),
    (APP, "siteConfig.ftpsState", "FtpsOnly", "function-app-hardening", "ftpsState"),
    (APP, "siteConfig.ftpsState", "AllAllowed", "function-app-hardening", "ftpsState"),
    (APP, "siteConfig.scmMinTlsVersion", "1.0", "function-app-hardening", "scmMinTlsVersion"),
    (APP, "identity.type", "None", "function-app-hardening", "identity.type"),
    (FTP, "allow", True, "basic-publishing-credentials-off", "allow"),
    (SCM, "allow", True, "basic-publishing-credentials-off", "allow"),
    (SUB, f"{DL}.endpointType", "WebHook", "event-subscription-dead-letter-and-retry", DL),
    (SUB, f"{DL}.blobContainerName", "", "event-subscription-dead-letter-and-retry", DL),
    (
        SUB,
        "retryPolicy.maxDeliveryAttempts",
        1,
        "event-subscription-dead-letter-and-retry",
        "maxDeliveryAttempts",
    ),
    (
        SUB,
        "retryPolicy.maxDeliveryAttempts",
        31,
        "event-subscription-dead-letter-and-retry",
        "from 2 to 30",
    ),
    (
        SUB,
        "retryPolicy.eventTimeToLiveInMinutes",
        0,
        "event-subscription-dead-letter-and-retry",
        "eventTimeToLiveInMinutes",
    ),
    (MP, "policy.rules", [], "lifecycle-policy-rules", "at least one rule"),
    (RA, "principalType", "User", "role-assignment-least-privilege", "principalType"),
    (RA, "principalType", "Group", "role-assignment-least-privilege", "'ServicePrincipal'"),
    (
        RA,
        "scope",
        "/subscriptions/00000000-0000-0000-0000-000000000000",
        "role-assignment-least-privilege",
        "subscription scope",
    ),
    (TOPIC, "disableLocalAuth", False, "event-grid-topic-entra-only", "disableLocalAuth"),
    (TOPIC, "minimumTlsVersionAllowed", "1.1", "event-grid-topic-entra-only", "'1.2'"),
    (SA, "tags.environment", "", "required-tags", "tags.environment"),
    (APP, "tags.app", "  ", "required-tags", "tags.app"),
]


@pytest.mark.parametrize(("resource_type", "path", "bad", "rule", "text"), FLIPS)
def test_flipped_property_is_a_violation(
    resource_type: str, path: str, bad: Any, rule: str, text: str
) -> None:
    props = examples.set_path(examples.COMPLIANT[resource_type](), path, bad)
    found = violations_of(resource_type, props)
    assert set(found) == {rule}, found
    assert any(text in message for message in found[rule]), found[rule]


# (type, property path removed, rule that must fire)
REMOVALS = [
    (SA, "enableHttpsTrafficOnly", "storage-account-hardening"),
    (SA, "minimumTlsVersion", "storage-account-hardening"),
    (SA, "allowBlobPublicAccess", "storage-account-hardening"),
    (SA, "allowSharedKeyAccess", "storage-account-hardening"),
    (BSP, "deleteRetentionPolicy", "blob-soft-delete"),
    (BSP, "containerDeleteRetentionPolicy", "blob-soft-delete"),
    (BSP, "deleteRetentionPolicy.days", "blob-soft-delete"),
    (APP, "httpsOnly", "function-app-hardening"),
    (APP, "siteConfig.minTlsVersion", "function-app-hardening"),
    (APP, "siteConfig.ftpsState", "function-app-hardening"),
    (APP, "identity", "function-app-hardening"),
    (FTP, "allow", "basic-publishing-credentials-off"),
    (SCM, "allow", "basic-publishing-credentials-off"),
    (SUB, "deadLetterWithResourceIdentity", "event-subscription-dead-letter-and-retry"),
    (SUB, "retryPolicy", "event-subscription-dead-letter-and-retry"),
    (SUB, "retryPolicy.maxDeliveryAttempts", "event-subscription-dead-letter-and-retry"),
    (MP, "policy", "lifecycle-policy-rules"),
    (MP, "policy.rules.0.definition", "lifecycle-policy-rules"),
    (RA, "principalType", "role-assignment-least-privilege"),
    (RA, "scope", "role-assignment-least-privilege"),
    (TOPIC, "disableLocalAuth", "event-grid-topic-entra-only"),
    (TOPIC, "minimumTlsVersionAllowed", "event-grid-topic-entra-only"),
    (SA, "tags", "required-tags"),
    (APP, "tags.managed-by", "required-tags"),
]


def _remove(props: dict[str, Any], path: str) -> dict[str, Any]:
    if ".rules.0." in path:
        del props["policy"]["rules"][0][path.rsplit(".", 1)[-1]]
        return props
    return examples.delete_path(props, path)


@pytest.mark.parametrize(("resource_type", "path", "rule"), REMOVALS)
def test_missing_property_is_a_violation(resource_type: str, path: str, rule: str) -> None:
    props = _remove(examples.COMPLIANT[resource_type](), path)
    found = violations_of(resource_type, props)
    assert set(found) == {rule}, found
    leaf = path.split(".")[0] if ".rules.0." not in path else "definition.actions"
    assert any(leaf in message and "not set" in message for message in found[rule]), found


@pytest.mark.parametrize(
    ("resource_type", "path"),
    [
        (SA, "minimumTlsVersion"),
        (SA, "allowSharedKeyAccess"),
        (APP, "identity.type"),
        (APP, "siteConfig"),
        (SUB, f"{DL}.resourceId"),
        (SUB, "retryPolicy"),
        (RA, "scope"),
        (SA, "tags"),
        (SA, "tags.app"),
        (MP, "policy.rules"),
    ],
)
def test_unknown_value_is_not_judged(resource_type: str, path: str) -> None:
    """None is how an unknown output arrives; only what is visibly wrong is reported."""
    props = examples.set_path(examples.COMPLIANT[resource_type](), path, None)
    assert violations_of(resource_type, props) == {}


@pytest.mark.parametrize(
    ("path", "value"), [("allowSharedKeyAccess", 0), ("enableHttpsTrafficOnly", 1)]
)
def test_booleans_must_be_booleans(path: str, value: int) -> None:
    props = examples.set_path(examples.storage_account(), path, value)
    assert "storage-account-hardening" in violations_of(SA, props)


def test_whole_numbers_sent_as_floats_are_accepted() -> None:
    props = examples.set_path(
        examples.event_subscription(), "retryPolicy.maxDeliveryAttempts", 30.0
    )
    assert violations_of(SUB, props) == {}


def test_storage_tls_1_3_is_accepted() -> None:
    props = examples.set_path(examples.storage_account(), "minimumTlsVersion", "TLS1_3")
    assert violations_of(SA, props) == {}


def test_plain_dead_letter_destination_is_accepted() -> None:
    props = examples.event_subscription()
    props["deadLetterDestination"] = props.pop("deadLetterWithResourceIdentity")[
        "deadLetterDestination"
    ]
    assert violations_of(SUB, props) == {}


def test_event_subscription_with_neither_dead_letter_nor_retry_reports_both() -> None:
    messages = violations_of(SUB, {"systemTopicName": "t"})[
        "event-subscription-dead-letter-and-retry"
    ]
    assert len(messages) == 2
    assert "dead-lettered" in messages[0]
    assert messages[1].startswith("retryPolicy is not set")


@pytest.mark.parametrize("attempts", [True, "30", 2.5e3, 2.5])
def test_retry_attempts_must_be_a_number_in_range(attempts: Any) -> None:
    props = examples.set_path(
        examples.event_subscription(), "retryPolicy.maxDeliveryAttempts", attempts
    )
    assert "event-subscription-dead-letter-and-retry" in violations_of(SUB, props)


def test_lifecycle_policy_with_only_disabled_rules_is_a_violation() -> None:
    props = examples.management_policy()
    props["policy"]["rules"][0]["enabled"] = False
    messages = violations_of(MP, props)["lifecycle-policy-rules"]
    assert messages == ["policy.rules has no enabled rule; at least one must be enabled"]


@pytest.mark.parametrize(
    "scope",
    [
        "/",
        "/subscriptions/00000000-0000-0000-0000-000000000000/",
        "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000",
        "/providers/Microsoft.Management/managementGroups/root-mg",
    ],
)
def test_role_assignment_at_broad_scope_is_a_violation(scope: str) -> None:
    props = examples.set_path(examples.role_assignment(), "scope", scope)
    assert "role-assignment-least-privilege" in violations_of(RA, props)


@pytest.mark.parametrize(
    "scope",
    [
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg",
        examples.ARCHIVE_ID + "/queueServices/default/queues/recording-events",
    ],
)
def test_role_assignment_at_group_or_resource_scope_is_accepted(scope: str) -> None:
    props = examples.set_path(examples.role_assignment(), "scope", scope)
    assert violations_of(RA, props) == {}


def test_untagged_resource_of_any_listed_taggable_type_is_a_violation() -> None:
    for resource_type in sorted(baseline.TAGGABLE_TYPES):
        assert set(violations_of(resource_type, {"location": "westeurope"})) >= {"required-tags"}, (
            resource_type
        )


def test_unlisted_type_with_tags_is_checked_and_untaggable_type_is_not() -> None:
    assert "required-tags" in violations_of("azure-native:cdn:Profile", {"tags": {"app": "x"}})
    assert violations_of("azure-native:storage:Queue", {"queueName": "q"}) == {}
    assert violations_of("acsrec:index:RecordingStorage", {"tags": {}}) == {}


def test_tags_that_are_not_a_map_are_a_violation() -> None:
    messages = violations_of(SA, {**examples.storage_account(), "tags": ["app"]})["required-tags"]
    assert "must be a map" in messages[0]


def _flex_app() -> dict[str, Any]:
    app = examples.web_app()
    del app["siteConfig"]["ftpsState"]
    app["functionAppConfig"] = {"runtime": {"name": "python", "version": "3.11"}}
    return app


def test_flex_consumption_app_without_ftps_state_is_compliant() -> None:
    assert violations_of(APP, _flex_app()) == {}


@pytest.mark.parametrize("key", baseline.FLEX_REFUSED_SITE_CONFIG)
def test_flex_consumption_app_may_not_send_a_property_arm_refuses(key: str) -> None:
    app = _flex_app()
    app["siteConfig"][key] = "Disabled"
    found = violations_of(APP, app)
    assert list(found) == ["function-app-hardening"]
    assert found["function-app-hardening"] == [
        f"siteConfig.{key} is set; ARM refuses it for Flex Consumption sites (error 51021)"
    ]


def test_flex_consumption_app_with_unknown_site_config_is_not_judged() -> None:
    app = _flex_app()
    app["siteConfig"] = None
    assert violations_of(APP, app) == {}


def test_flex_consumption_app_with_a_refused_property_of_unknown_value_is_a_violation() -> None:
    """ARM refuses the property by its presence; its value does not matter."""
    app = _flex_app()
    app["siteConfig"]["ftpsState"] = None
    assert "function-app-hardening" in violations_of(APP, app)


RD = baseline.ROLE_DEFINITION


@pytest.mark.parametrize(
    ("path", "bad", "expected"),
    [
        ("assignableScopes", [], "assignableScopes is not set"),
        (
            "assignableScopes",
            ["/subscriptions/00000000-0000-0000-0000-00000000c0de"],
            "subscription scope or broader",
        ),
        ("assignableScopes", ["/"], "subscription scope or broader"),
        (
            "permissions",
            [
                {
                    "dataActions": [
                        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"
                    ]
                }
            ],
            "permissions[0].dataActions has",
        ),
        ("permissions", [{"actions": ["*"]}], "permissions[0].actions has '*'"),
        (
            "permissions",
            [{"actions": ["Microsoft.Authorization/roleAssignments/write"]}],
            "must not manage access or read keys",
        ),
        (
            "permissions",
            [{"actions": ["Microsoft.Storage/storageAccounts/listKeys/action"]}],
            "must not manage access or read keys",
        ),
    ],
)
def test_custom_role_must_be_narrow(path: str, bad: Any, expected: str) -> None:
    props = examples.role_definition()
    props[path] = bad
    found = violations_of(RD, props)
    assert list(found) == ["role-definition-least-privilege"]
    assert any(expected in message for message in found["role-definition-least-privilege"])


def test_custom_role_with_unknown_scope_is_not_judged() -> None:
    props = examples.role_definition()
    props["assignableScopes"] = [None]
    assert violations_of(RD, props) == {}


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_SETTINGS = {
    "API_AUTH": "entraId",
    "API_TENANT_ID": TENANT,
    "API_AUDIENCE": "api://acs-call-recording",
    "API_ALLOWED_CLIENT_IDS": "",
    "API_REQUIRED_ROLE": "Recordings.ReadWrite",
    "API_OIDC_METADATA_URL": f"https://login.microsoftonline.com/{TENANT}/v2.0/"
    ".well-known/openid-configuration",
}


def app_with_settings(settings: dict[str, Any]) -> dict[str, Any]:
    app = examples.web_app()
    app["siteConfig"]["appSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    return app


@pytest.mark.parametrize(
    "settings",
    [
        {"API_AUTH": "functionKey", "API_TENANT_ID": "", "API_AUDIENCE": ""},
        ENTRA_SETTINGS,
        {**ENTRA_SETTINGS, "API_AUTH": "both"},
        {**ENTRA_SETTINGS, "API_TENANT_ID": None, "API_AUDIENCE": None},  # unknown in a preview
        {**ENTRA_SETTINGS, "API_ALLOWED_CLIENT_IDS": "a", "API_REQUIRED_ROLE": ""},
        {**ENTRA_SETTINGS, "API_REQUIRED_ROLE": None},
        {},
    ],
    ids=["functionKey", "entraId", "both", "unknown", "clients-only", "role-unknown", "no-setting"],
)
def test_every_api_auth_mode_is_accepted(settings: dict[str, Any]) -> None:
    assert violations_of(APP, app_with_settings(settings)) == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"API_AUTH": "anonymous"}, "API_AUTH is 'anonymous'; it must be one of"),
        ({"API_TENANT_ID": ""}, "API_TENANT_ID is ''; with API_AUTH entraId it must be"),
        ({"API_TENANT_ID": "contoso.com"}, "API_TENANT_ID is 'contoso.com'"),
        ({"API_AUDIENCE": " "}, "API_AUDIENCE is empty; with API_AUTH entraId"),
        ({"API_OIDC_METADATA_URL": "http://keys.example/"}, "signing keys must come over https"),
        (
            {"API_REQUIRED_ROLE": " "},
            "API_ALLOWED_CLIENT_IDS and API_REQUIRED_ROLE are both empty; with API_AUTH entraId "
            "one must name who may call",
        ),
        (
            {"API_REQUIRED_ROLE": ""},
            "API_ALLOWED_CLIENT_IDS and API_REQUIRED_ROLE are both empty",
        ),
    ],
    ids=[
        "mode",
        "no-tenant",
        "tenant-not-a-guid",
        "no-audience",
        "plain-http-keys",
        "any-caller",
        "no-role",
    ],
)
def test_an_entra_id_app_must_name_its_tenant_audience_and_https_keys(
    change: dict[str, str], expected: str
) -> None:
    found = violations_of(APP, app_with_settings({**ENTRA_SETTINGS, **change}))
    assert list(found) == ["function-app-api-auth"]
    [message] = found["function-app-api-auth"]
    assert message.startswith("siteConfig.appSettings API_")
    assert expected in message
