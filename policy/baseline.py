"""The security baseline as pure functions over resource types and engine property dicts.

The rules live here, apart from `pulumi_policy`, because a `PolicyPack` cannot be built in a
test (its constructor starts a gRPC server and blocks). Tests call these functions with
hand-made properties and with the inputs the real program registers under mocks; the pack
(`policy/policies.py`) only adapts them to CrossGuard.

Properties use the engine's camelCase input names (`minimumTlsVersion`, not
`minimum_tls_version`). A value of ``None`` means "not known yet" (an output of another
resource during preview or under mocks): a rule never reports an unknown value, it reports only
what it can see is wrong or missing. Every message names the property path and the rule, so a
failed preview says exactly what to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE_PROPERTIES = "azure-native:storage:BlobServiceProperties"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
MANAGEMENT_POLICY = "azure-native:storage:ManagementPolicy"
WEB_APP = "azure-native:web:WebApp"
WEB_APP_FTP_ALLOWED = "azure-native:web:WebAppFtpAllowed"
WEB_APP_SCM_ALLOWED = "azure-native:web:WebAppScmAllowed"
WEB_APP_FTP_ALLOWED_SLOT = "azure-native:web:WebAppFtpAllowedSlot"
WEB_APP_SCM_ALLOWED_SLOT = "azure-native:web:WebAppScmAllowedSlot"
SYSTEM_TOPIC_EVENT_SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
EVENT_SUBSCRIPTION = "azure-native:eventgrid:EventSubscription"
EVENT_GRID_TOPIC = "azure-native:eventgrid:Topic"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
PRIVATE_DNS_ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
QUEUE = "azure-native:storage:Queue"
TABLE = "azure-native:storage:Table"
EVENT_SUBSCRIPTION_TYPES = (SYSTEM_TOPIC_EVENT_SUBSCRIPTION, EVENT_SUBSCRIPTION)
#: Event Grid destinations in a storage account (behind its firewall in a private stack).
STORAGE_ENDPOINT_TYPES = ("StorageQueue", "StorageBlob")

REQUIRED_TAGS = ("app", "environment", "managed-by")

# Types of this program (and close relatives) that carry ARM tags, as azure-native 3.x names
# them. Any other azure-native resource is checked too as soon as it sets `tags`; the tests
# check, against the installed SDK, that every taggable type the program registers is listed.
TAGGABLE_TYPES = frozenset(
    {
        "azure-native:resources:ResourceGroup",
        "azure-native:network:VirtualNetwork",
        "azure-native:network:NetworkSecurityGroup",
        "azure-native:network:PublicIPAddress",
        "azure-native:network:NatGateway",
        PRIVATE_ENDPOINT,
        "azure-native:privatedns:PrivateZone",
        "azure-native:privatedns:VirtualNetworkLink",
        STORAGE_ACCOUNT,
        WEB_APP,
        "azure-native:web:AppServicePlan",
        "azure-native:communication:CommunicationService",
        "azure-native:communication:EmailService",
        "azure-native:eventgrid:SystemTopic",
        EVENT_GRID_TOPIC,
        "azure-native:applicationinsights:Component",
        "azure-native:operationalinsights:Workspace",
        "azure-native:monitor:ActionGroup",
        "azure-native:monitor:MetricAlert",
        "azure-native:monitor:ScheduledQueryRule",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:keyvault:Vault",
    }
)

STORAGE_TLS_VERSIONS = ("TLS1_2", "TLS1_3")
#: siteConfig properties ARM refuses on a Flex Consumption site with error 51021 ("The following
#: site configuration property ... for Flex Consumption sites is invalid. Please remove or rename
#: it"): seen refused in West Europe, and listed as "Flex Consumption plan deprecations" in
#: learn.microsoft.com/azure/azure-functions/functions-app-settings.
FLEX_REFUSED_SITE_CONFIG = (
    "ftpsState",
    "linuxFxVersion",
    "windowsFxVersion",
    "netFrameworkVersion",
    "javaVersion",
    "powerShellVersion",
    "use32BitWorkerProcess",
    "functionsRuntimeScaleMonitoringEnabled",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "vnetRouteAllEnabled",
)
APP_SERVICE_TLS_VERSIONS = ("1.2", "1.3")
#: Values of the recording API's ``API_AUTH`` app setting (recording_pipeline/settings.py).
API_AUTH_MODES = ("functionKey", "entraId", "both")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EVENT_GRID_TLS_VERSIONS = ("1.2",)
MAX_DELIVERY_ATTEMPTS_RANGE = (2, 30)
EVENT_TTL_MINUTES_RANGE = (1, 1440)

#: Actions that hand out more access than the role itself: managing access, reading keys.
_ESCALATING_ACTION = re.compile(
    r"^Microsoft\.Authorization/|/listKeys/action$|/regenerateKey/action$", re.IGNORECASE
)
_BROAD_SCOPE = re.compile(
    r"^/$"
    r"|^/subscriptions/[^/]+/?$"
    r"|^/providers/Microsoft\.Management/managementGroups/[^/]+/?$",
    re.IGNORECASE,
)


def is_unknown(value: Any) -> bool:
    """None stands for a value the engine does not know yet; rules never judge it."""
    return value is None


def get_path(props: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of a dotted property path.

    A missing parent means "not present"; an unknown parent makes the whole path unknown.
    """
    current: Any = props
    for part in path.split("."):
        if is_unknown(current):
            return True, None
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _require_value(
    props: Mapping[str, Any], path: str, allowed: Sequence[Any], rule: str
) -> list[str]:
    present, value = get_path(props, path)
    if not present:
        return [f"{path} is not set; {rule}"]
    # Compared with its type too: 1 == True in Python, but 1 is not a boolean setting.
    if is_unknown(value) or any(type(value) is type(a) and value == a for a in allowed):
        return []
    return [f"{path} is {value!r}; {rule}"]


def _require_int_in(props: Mapping[str, Any], path: str, low: int, high: int) -> list[str]:
    present, value = get_path(props, path)
    rule = f"it must be an integer from {low} to {high}"
    if not present:
        return [f"{path} is not set; {rule}"]
    if is_unknown(value):
        return []
    # The engine sends every number as a float: 30.0 is the integer 30, 2.5 is not an integer.
    is_whole = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_whole or not float(value).is_integer() or not low <= value <= high:
        return [f"{path} is {value!r}; {rule}"]
    return []


def _require_text(props: Mapping[str, Any], path: str, rule: str) -> list[str]:
    present, value = get_path(props, path)
    if not present or (not is_unknown(value) and (not isinstance(value, str) or not value)):
        return [f"{path} is {'not set' if not present else repr(value)}; {rule}"]
    return []


# --- resource rules -----------------------------------------------------------------------------


def check_storage_account(props: Mapping[str, Any]) -> list[str]:
    """Recordings are personal data: only HTTPS, modern TLS, no anonymous reads, no account keys."""
    return [
        *_require_value(props, "enableHttpsTrafficOnly", (True,), "it must be true (HTTPS only)"),
        *_require_value(
            props,
            "minimumTlsVersion",
            STORAGE_TLS_VERSIONS,
            "it must be 'TLS1_2' or newer",
        ),
        *_require_value(
            props,
            "allowBlobPublicAccess",
            (False,),
            "it must be false (no anonymous blob access)",
        ),
        *_require_value(
            props,
            "allowSharedKeyAccess",
            (False,),
            "it must be false (Entra ID only, no account keys)",
        ),
    ]


def _check_retention(props: Mapping[str, Any], path: str) -> list[str]:
    enabled = _require_value(props, f"{path}.enabled", (True,), "soft delete must be on")
    return enabled or _require_int_in(props, f"{path}.days", 1, 365)


def check_blob_service_properties(props: Mapping[str, Any]) -> list[str]:
    """A deleted recording or container must stay recoverable for a while."""
    return [
        *_check_retention(props, "deleteRetentionPolicy"),
        *_check_retention(props, "containerDeleteRetentionPolicy"),
    ]


def _identity_is_managed(props: Mapping[str, Any]) -> list[str]:
    present, kind = get_path(props, "identity.type")
    if not present:
        return ["identity.type is not set; the app needs a managed identity (no secrets)"]
    if is_unknown(kind):
        return []
    if not isinstance(kind, str) or "Assigned" not in kind:
        return [f"identity.type is {kind!r}; it must be SystemAssigned and/or UserAssigned"]
    return []


def check_web_app(props: Mapping[str, Any]) -> list[str]:
    """The Function App is the pipeline's only public endpoint: HTTPS, TLS 1.2+, no FTP.

    A Flex Consumption site (``functionAppConfig`` set) has no FTP endpoint and ARM refuses
    ``ftpsState`` for it, so there FTP is judged by the basic-publishing-credentials rules and
    a refused property is itself a violation; other sites must say ``ftpsState: Disabled``.
    """
    violations = [
        *_require_value(props, "httpsOnly", (True,), "it must be true (redirect HTTP to HTTPS)"),
        *_require_value(
            props, "siteConfig.minTlsVersion", APP_SERVICE_TLS_VERSIONS, "it must be '1.2' or newer"
        ),
        *_identity_is_managed(props),
    ]
    flex, _ = get_path(props, "functionAppConfig")
    _, site = get_path(props, "siteConfig")
    if flex:
        # ARM refuses the property by its presence, whatever its value (even one not known yet).
        violations += [
            f"siteConfig.{key} is set; ARM refuses it for Flex Consumption sites (error 51021)"
            for key in FLEX_REFUSED_SITE_CONFIG
            if isinstance(site, Mapping) and key in site
        ]
    else:
        violations += _require_value(
            props, "siteConfig.ftpsState", ("Disabled",), "it must be 'Disabled' (no FTP/FTPS)"
        )
    present, _ = get_path(props, "siteConfig.scmMinTlsVersion")
    if present:
        violations += _require_value(
            props,
            "siteConfig.scmMinTlsVersion",
            APP_SERVICE_TLS_VERSIONS,
            "it must be '1.2' or newer",
        )
    return violations


def _app_settings(props: Mapping[str, Any]) -> dict[str, Any]:
    """``siteConfig.appSettings`` as name -> value (values may be unknown: None)."""
    _, items = get_path(props, "siteConfig.appSettings")
    if not isinstance(items, list):
        return {}
    return {
        item["name"]: item.get("value")
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    }


def check_api_auth_settings(props: Mapping[str, Any]) -> list[str]:
    """Every ``API_AUTH`` mode is allowed, but an app that requires Entra ID tokens must say
    whose: a tenant (a GUID), an audience, allowed client ids or an app role, and keys fetched
    over https. Without them the app would refuse to start, admit every app of the tenant, or
    trust keys from a plain-http endpoint."""
    settings = _app_settings(props)
    mode = settings.get("API_AUTH")
    if mode is None:
        return []
    if mode not in API_AUTH_MODES:
        return [
            f"siteConfig.appSettings API_AUTH is {mode!r}; it must be one of "
            + ", ".join(API_AUTH_MODES)
        ]
    if mode == "functionKey":
        return []
    violations = []
    tenant = settings.get("API_TENANT_ID", "")
    if tenant is not None and not (isinstance(tenant, str) and _GUID.fullmatch(tenant)):
        violations.append(
            f"siteConfig.appSettings API_TENANT_ID is {tenant!r}; with API_AUTH {mode} it must "
            "be the tenant id (a GUID) whose tokens the API accepts"
        )
    audience = settings.get("API_AUDIENCE", "")
    if audience is not None and not (isinstance(audience, str) and audience.strip()):
        violations.append(
            f"siteConfig.appSettings API_AUDIENCE is empty; with API_AUTH {mode} it must name the "
            "API's application ID URI and/or client id"
        )
    callers = [settings.get(name, "") for name in ("API_ALLOWED_CLIENT_IDS", "API_REQUIRED_ROLE")]
    if all(isinstance(value, str) and not value.strip() for value in callers):
        violations.append(
            "siteConfig.appSettings API_ALLOWED_CLIENT_IDS and API_REQUIRED_ROLE are both empty; "
            f"with API_AUTH {mode} one must name who may call: a tenant and an audience alone "
            "admit any application or user of the tenant that obtains a token"
        )
    metadata = settings.get("API_OIDC_METADATA_URL", "")
    if isinstance(metadata, str) and metadata and not metadata.startswith("https://"):
        violations.append(
            f"siteConfig.appSettings API_OIDC_METADATA_URL is {metadata!r}; signing keys must "
            "come over https"
        )
    return violations


def check_basic_publishing_credentials(props: Mapping[str, Any]) -> list[str]:
    """Deployments use Entra tokens; username/password publishing must stay off."""
    return _require_value(
        props, "allow", (False,), "basic publishing credentials must be disabled (allow: false)"
    )


def _dead_letter_path(props: Mapping[str, Any]) -> str | None:
    """Where the subscription names its dead-letter destination, if anywhere.

    With shared keys off, dead-lettering must use the topic's identity, so the destination sits
    under deadLetterWithResourceIdentity; the plain deadLetterDestination is accepted as well.
    """
    for path in ("deadLetterWithResourceIdentity.deadLetterDestination", "deadLetterDestination"):
        present, _ = get_path(props, path)
        if present:
            return path
    return None


def check_event_subscription(props: Mapping[str, Any]) -> list[str]:
    """Undeliverable events must land in a dead-letter container and be retried meanwhile."""
    violations: list[str] = []
    path = _dead_letter_path(props)
    if path is None:
        violations.append(
            "deadLetterWithResourceIdentity.deadLetterDestination (or deadLetterDestination) is "
            "not set; undeliverable events must be dead-lettered to a blob container"
        )
    elif not is_unknown(get_path(props, path)[1]):
        violations += _require_value(
            props, f"{path}.endpointType", ("StorageBlob",), "it must be 'StorageBlob'"
        )
        violations += _require_text(props, f"{path}.resourceId", "it must name a storage account")
        violations += _require_text(
            props, f"{path}.blobContainerName", "it must name a blob container"
        )
    present, retry = get_path(props, "retryPolicy")
    if not present:
        violations.append(
            "retryPolicy is not set; set maxDeliveryAttempts and eventTimeToLiveInMinutes"
        )
    elif not is_unknown(retry):
        violations += _require_int_in(
            props, "retryPolicy.maxDeliveryAttempts", *MAX_DELIVERY_ATTEMPTS_RANGE
        )
        violations += _require_int_in(
            props, "retryPolicy.eventTimeToLiveInMinutes", *EVENT_TTL_MINUTES_RANGE
        )
    return violations


def check_event_grid_topic(props: Mapping[str, Any]) -> list[str]:
    """Only Entra identities with a data-sender role may publish: no access keys or SAS tokens
    (``disableLocalAuth`` defaults to false), and TLS 1.2."""
    violations = _require_value(
        props,
        "disableLocalAuth",
        (True,),
        "local auth (access keys, SAS tokens) must be disabled (disableLocalAuth: true)",
    )
    violations += _require_value(
        props, "minimumTlsVersionAllowed", EVENT_GRID_TLS_VERSIONS, "it must be '1.2'"
    )
    return violations


def check_management_policy(props: Mapping[str, Any]) -> list[str]:
    """A lifecycle policy without an enabled rule that acts on blobs moves nothing to cold tiers."""
    present, rules = get_path(props, "policy.rules")
    if not present:
        return ["policy.rules is not set; the lifecycle policy needs at least one rule"]
    if is_unknown(rules):
        return []
    if not isinstance(rules, Sequence) or isinstance(rules, str) or not rules:
        return [f"policy.rules is {rules!r}; the lifecycle policy needs at least one rule"]
    violations: list[str] = []
    enabled_rules = 0
    for index, rule in enumerate(rules):
        where = f"policy.rules[{index}]"
        if not isinstance(rule, Mapping):
            violations.append(f"{where} is {rule!r}; each rule must be an object")
            continue
        if rule.get("enabled", True) is not False:
            enabled_rules += 1
        present, actions = get_path(rule, "definition.actions")
        if not present or (isinstance(actions, Mapping) and not actions):
            violations.append(f"{where}.definition.actions is not set; a rule must act on blobs")
    if enabled_rules == 0:
        violations.append("policy.rules has no enabled rule; at least one must be enabled")
    return violations


def check_role_assignment(props: Mapping[str, Any]) -> list[str]:
    """Grants go to managed identities on single resources, never to users or subscriptions."""
    violations = _require_value(
        props,
        "principalType",
        ("ServicePrincipal",),
        "it must be 'ServicePrincipal' (the SDK's default is 'User')",
    )
    present, scope = get_path(props, "scope")
    if not present:
        violations.append("scope is not set; a role assignment must name its resource scope")
    elif not is_unknown(scope) and (not isinstance(scope, str) or _BROAD_SCOPE.match(scope)):
        violations.append(
            f"scope is {scope!r}; role assignments must not be at subscription scope or broader"
        )
    return violations


def check_role_definition(props: Mapping[str, Any]) -> list[str]:
    """A custom role names each permission it grants and is assignable in one resource group."""
    violations = []
    present, scopes = get_path(props, "assignableScopes")
    if not present or (not is_unknown(scopes) and not scopes):
        violations.append("assignableScopes is not set; a custom role must name where it applies")
    elif not is_unknown(scopes):
        for scope in scopes:
            if not is_unknown(scope) and (not isinstance(scope, str) or _BROAD_SCOPE.match(scope)):
                violations.append(
                    f"assignableScopes has {scope!r}; a custom role must not be assignable at "
                    "subscription scope or broader"
                )
    _, grants = get_path(props, "permissions")
    for index, grant in enumerate(grants if isinstance(grants, list) else []):
        for key in ("actions", "dataActions"):
            for action in (grant or {}).get(key) or []:
                if isinstance(action, str) and "*" in action:
                    violations.append(
                        f"permissions[{index}].{key} has {action!r}; a custom role must list "
                        "each permission, without wildcards"
                    )
                elif isinstance(action, str) and _ESCALATING_ACTION.search(action):
                    violations.append(
                        f"permissions[{index}].{key} has {action!r}; a workload's custom role "
                        "must not manage access or read keys"
                    )
    return violations


def is_taggable(resource_type: str, props: Mapping[str, Any]) -> bool:
    return resource_type in TAGGABLE_TYPES or (
        resource_type.startswith("azure-native:") and "tags" in props
    )


def check_required_tags(props: Mapping[str, Any]) -> list[str]:
    """Cost reports and clean-up scripts find the solution's resources by these tags."""
    present, tags = get_path(props, "tags")
    if not present:
        return [f"tags is not set; it must contain {', '.join(REQUIRED_TAGS)}"]
    if is_unknown(tags):
        return []
    if not isinstance(tags, Mapping):
        return [f"tags is {tags!r}; it must be a map containing {', '.join(REQUIRED_TAGS)}"]
    violations = []
    for key in REQUIRED_TAGS:
        value = tags.get(key)
        if key not in tags:
            violations.append(f"tags.{key} is not set; the tag is required")
        elif not is_unknown(value) and (not isinstance(value, str) or not value.strip()):
            violations.append(f"tags.{key} is {value!r}; the tag needs a non-empty value")
    return violations


@dataclass(frozen=True)
class ResourceRule:
    """One resource policy of the pack: its name, what it guards and the check."""

    name: str
    description: str
    applies: Callable[[str, Mapping[str, Any]], bool]
    check: Callable[[Mapping[str, Any]], list[str]]


def _of_types(*types: str) -> Callable[[str, Mapping[str, Any]], bool]:
    wanted = frozenset(types)
    return lambda resource_type, _props: resource_type in wanted


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "storage-account-hardening",
        "Storage accounts: HTTPS only, TLS 1.2+, no public blob access, no shared key access.",
        _of_types(STORAGE_ACCOUNT),
        check_storage_account,
    ),
    ResourceRule(
        "blob-soft-delete",
        "Blob services keep deleted blobs and containers recoverable (soft delete on).",
        _of_types(BLOB_SERVICE_PROPERTIES),
        check_blob_service_properties,
    ),
    ResourceRule(
        "function-app-hardening",
        "Web/Function Apps: HTTPS only, TLS 1.2+, no FTP(S), managed identity, Flex-valid config.",
        _of_types(WEB_APP),
        check_web_app,
    ),
    ResourceRule(
        "function-app-api-auth",
        "Web/Function Apps with API_AUTH entraId or both name a tenant, an audience, allowed "
        "clients or an app role, and https signing keys.",
        _of_types(WEB_APP),
        check_api_auth_settings,
    ),
    ResourceRule(
        "basic-publishing-credentials-off",
        "FTP and SCM basic-auth publishing credentials are disabled.",
        _of_types(
            WEB_APP_FTP_ALLOWED,
            WEB_APP_SCM_ALLOWED,
            WEB_APP_FTP_ALLOWED_SLOT,
            WEB_APP_SCM_ALLOWED_SLOT,
        ),
        check_basic_publishing_credentials,
    ),
    ResourceRule(
        "event-subscription-dead-letter-and-retry",
        "Event Grid subscriptions dead-letter to blob storage and have a bounded retry policy.",
        _of_types(SYSTEM_TOPIC_EVENT_SUBSCRIPTION, EVENT_SUBSCRIPTION),
        check_event_subscription,
    ),
    ResourceRule(
        "event-grid-topic-entra-only",
        "Event Grid custom topics accept Entra ID publishers only (local auth off), over TLS 1.2.",
        _of_types(EVENT_GRID_TOPIC),
        check_event_grid_topic,
    ),
    ResourceRule(
        "lifecycle-policy-rules",
        "Storage lifecycle policies have at least one enabled rule with actions.",
        _of_types(MANAGEMENT_POLICY),
        check_management_policy,
    ),
    ResourceRule(
        "role-assignment-least-privilege",
        "Role assignments go to ServicePrincipal principals and never at subscription scope.",
        _of_types(ROLE_ASSIGNMENT),
        check_role_assignment,
    ),
    ResourceRule(
        "role-definition-least-privilege",
        "Custom roles list each permission (no wildcard) and are assignable below subscription.",
        _of_types(ROLE_DEFINITION),
        check_role_definition,
    ),
    ResourceRule(
        "required-tags",
        f"Taggable resources carry the tags {', '.join(REQUIRED_TAGS)}.",
        is_taggable,
        check_required_tags,
    ),
)


def resource_violations(resource_type: str, props: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every rule's violations for one resource, keyed by rule name (rules that pass are absent)."""
    found: dict[str, list[str]] = {}
    for rule in RESOURCE_RULES:
        if rule.applies(resource_type, props):
            messages = rule.check(props)
            if messages:
                found[rule.name] = messages
    return found


# --- stack rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackResource:
    """What a stack rule needs to know about one resource: type, identity, props and links."""

    type_: str
    urn: str
    props: Mapping[str, Any]
    dependencies: frozenset[str] = field(default_factory=frozenset)
    parent: str | None = None


@dataclass(frozen=True)
class StackViolation:
    message: str
    urn: str | None = None


def _known_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _linked(child: StackResource, owner: StackResource, name_key: str, owner_key: str) -> bool:
    """True when ``child`` is attached to ``owner``: it depends on it or names it.

    During a real preview the owner's name is often unknown (autonamed); the engine still tells
    which resources a child depends on, so dependencies come first and names second.
    """
    if owner.urn in child.dependencies or child.parent == owner.urn:
        return True
    child_name = _known_str(child.props.get(name_key))
    owner_name = _known_str(owner.props.get(owner_key))
    return child_name is not None and child_name == owner_name


def _of_type(resources: Iterable[StackResource], *types: str) -> Iterator[StackResource]:
    return (r for r in resources if r.type_ in types)


def _holds_recordings(container: StackResource) -> bool:
    name = _known_str(container.props.get("containerName")) or container.urn.rsplit("::", 1)[-1]
    return "recording" in name.lower()


def recording_accounts(resources: Sequence[StackResource]) -> list[StackResource | None]:
    """Storage accounts with a recordings container; None stands for an account not identified."""
    accounts = list(_of_type(resources, STORAGE_ACCOUNT))
    found: list[StackResource | None] = []
    for container in _of_type(resources, BLOB_CONTAINER):
        if not _holds_recordings(container):
            continue
        owner = next(
            (a for a in accounts if _linked(container, a, "accountName", "accountName")), None
        )
        if owner not in found:
            found.append(owner)
    return found


def _missing_companion(
    resources: Sequence[StackResource], companion_type: str, what: str
) -> list[StackViolation]:
    companions = list(_of_type(resources, companion_type))
    violations = []
    for account in recording_accounts(resources):
        if account is None:
            if not companions:
                violations.append(
                    StackViolation(f"a recordings container exists but the stack has no {what}")
                )
        elif not any(_linked(c, account, "accountName", "accountName") for c in companions):
            violations.append(
                StackViolation(
                    f"storage account {account.urn.rsplit('::', 1)[-1]} holds recordings but has "
                    f"no {what}",
                    account.urn,
                )
            )
    return violations


def check_recordings_lifecycle_present(resources: Sequence[StackResource]) -> list[StackViolation]:
    """Recordings must age out to cheaper tiers and be deleted: a lifecycle policy is mandatory."""
    return _missing_companion(
        resources, MANAGEMENT_POLICY, f"lifecycle policy ({MANAGEMENT_POLICY})"
    )


def check_recordings_soft_delete_present(
    resources: Sequence[StackResource],
) -> list[StackViolation]:
    """Without blob service properties the account runs with soft delete off."""
    return _missing_companion(
        resources, BLOB_SERVICE_PROPERTIES, f"blob soft delete ({BLOB_SERVICE_PROPERTIES})"
    )


def check_web_app_credentials_present(resources: Sequence[StackResource]) -> list[StackViolation]:
    """Basic publishing credentials are ON by default: each app must switch both off explicitly."""
    violations = []
    for app in _of_type(resources, WEB_APP):
        for companion_type in (WEB_APP_FTP_ALLOWED, WEB_APP_SCM_ALLOWED):
            if not any(
                _linked(c, app, "name", "name") for c in _of_type(resources, companion_type)
            ):
                violations.append(
                    StackViolation(
                        f"web app {app.urn.rsplit('::', 1)[-1]} has no {companion_type} resource; "
                        "basic publishing credentials stay enabled unless it sets allow: false",
                        app.urn,
                    )
                )
    return violations


def is_private_stack(resources: Sequence[StackResource]) -> bool:
    """A stack is private when it has a private endpoint or a VNet-integrated web app.

    The pack sees resources, not stack config; these two are what ``network: private`` adds, and
    a stack that has either has chosen private data paths, so the rules below hold it to them.
    """
    return any(r.type_ == PRIVATE_ENDPOINT for r in resources) or any(
        "virtualNetworkSubnetId" in r.props for r in _of_type(resources, WEB_APP)
    )


def _children(
    resources: Sequence[StackResource], account: StackResource, type_: str
) -> list[StackResource]:
    return [
        c for c in _of_type(resources, type_) if _linked(c, account, "accountName", "accountName")
    ]


def _dead_letter_container_names(resources: Sequence[StackResource]) -> set[str]:
    """Containers an event subscription dead-letters to (by name: ids are unknown in preview)."""
    names: set[str] = set()
    for subscription in _of_type(resources, *EVENT_SUBSCRIPTION_TYPES):
        path = _dead_letter_path(subscription.props)
        if path is not None:
            name = _known_str(get_path(subscription.props, f"{path}.blobContainerName")[1])
            if name is not None:
                names.add(name)
    return names


def is_ingress_account(account: StackResource, resources: Sequence[StackResource]) -> bool:
    """True for an account that holds only queues and dead-letter containers: what Event Grid
    writes. Such an account holds no media and no registry, so it alone may keep a firewall that
    admits trusted Azure services (Event Grid's only way through a storage firewall)."""
    if _children(resources, account, TABLE):
        return False
    queues = _children(resources, account, QUEUE)
    containers = _children(resources, account, BLOB_CONTAINER)
    dead_letters = _dead_letter_container_names(resources)
    for container in containers:
        if _known_str(container.props.get("containerName")) not in dead_letters:
            return False
    return bool(queues or containers)


def _public_path_open(props: Mapping[str, Any], *, ingress: bool) -> str | None:
    """Why the account's public endpoint admits more than it may, or None when it does not.

    Closed means ``publicNetworkAccess: Disabled``; the ingress account may instead keep a
    firewall that denies by default with no IP or VNet rule (trusted Azure services pass).
    """
    access = props.get("publicNetworkAccess")
    if access == "Disabled" or is_unknown(access):
        return None
    if not ingress:
        return (
            f"publicNetworkAccess is {access!r}; in a private stack it must be 'Disabled' (only "
            "an account holding nothing but queues and a dead-letter container may admit "
            "trusted services through a firewall)"
        )
    present, rules = get_path(props, "networkRuleSet")
    if not present:
        return (
            f"publicNetworkAccess is {access!r} and networkRuleSet is not set; set "
            "publicNetworkAccess to 'Disabled' or networkRuleSet.defaultAction to 'Deny'"
        )
    if is_unknown(rules):
        return None
    action = rules.get("defaultAction") if isinstance(rules, Mapping) else None
    if is_unknown(action):
        return None
    if action != "Deny":
        return f"networkRuleSet.defaultAction is {action!r}; it must be 'Deny' in a private stack"
    for key in ("ipRules", "virtualNetworkRules", "resourceAccessRules"):
        allowed = rules.get(key)
        if isinstance(allowed, list) and allowed:
            return (
                f"networkRuleSet.{key} admits {len(allowed)} network(s) or resource(s); a "
                "private stack has none (trusted services pass through bypass)"
            )
    bypass = rules.get("bypass")
    if not is_unknown(bypass) and "AzureServices" not in str(bypass or ""):
        return (
            f"networkRuleSet.bypass is {bypass!r}; the ingress account needs 'AzureServices' "
            "(Event Grid delivers and dead-letters through the firewall only as a trusted service)"
        )
    return None


def check_private_storage_network(resources: Sequence[StackResource]) -> list[StackViolation]:
    """In a private stack every storage account refuses public network access, except the
    ingress account, whose firewall admits trusted Azure services and no network."""
    if not is_private_stack(resources):
        return []
    violations = []
    for account in _of_type(resources, STORAGE_ACCOUNT):
        reason = _public_path_open(account.props, ingress=is_ingress_account(account, resources))
        if reason is not None:
            name = account.urn.rsplit("::", 1)[-1]
            violations.append(StackViolation(f"storage account {name}: {reason}", account.urn))
    return violations


def _endpoint_group_ids(endpoint: StackResource) -> set[str]:
    connections = endpoint.props.get("privateLinkServiceConnections")
    found: set[str] = set()
    for connection in connections if isinstance(connections, list) else []:
        group_ids = connection.get("groupIds") if isinstance(connection, Mapping) else None
        found.update(g for g in (group_ids or []) if isinstance(g, str))
    return found


def required_sub_resources(account: StackResource, resources: Sequence[StackResource]) -> list[str]:
    """The sub-resources the app reaches ``account`` on, each needing a private endpoint.

    Blob on every account (media, dead letters, host keys and the deployment package); queue
    where the account holds queues; table everywhere but the ingress account: the registry is a
    table of the recordings account, and the Functions host writes its diagnostic events to
    tables of its own account, which it creates at run time (the pack cannot see them).
    """
    ingress = is_ingress_account(account, resources)
    required = ["blob"]
    if ingress or _children(resources, account, QUEUE):
        required.append("queue")
    if not ingress:
        required.append("table")
    return required


def check_private_storage_endpoints(resources: Sequence[StackResource]) -> list[StackViolation]:
    """In a private stack every storage account has a private endpoint for each sub-resource the
    app uses there: with the public path closed, it has no other way in."""
    if not is_private_stack(resources):
        return []
    endpoints = list(_of_type(resources, PRIVATE_ENDPOINT))
    zone_groups = list(_of_type(resources, PRIVATE_DNS_ZONE_GROUP))
    violations = []
    for account in _of_type(resources, STORAGE_ACCOUNT):
        covered: set[str] = set()
        for endpoint in endpoints:
            if account.urn in endpoint.dependencies and _has_zone_group(endpoint, zone_groups):
                covered |= _endpoint_group_ids(endpoint)
        missing = [s for s in required_sub_resources(account, resources) if s not in covered]
        if missing:
            violations.append(
                StackViolation(
                    f"storage account {account.urn.rsplit('::', 1)[-1]} has no private endpoint "
                    f"for {', '.join(missing)} ({PRIVATE_ENDPOINT} with that group id and a "
                    f"{PRIVATE_DNS_ZONE_GROUP} naming a zone, or the app resolves the public "
                    "address the firewall refuses)",
                    account.urn,
                )
            )
    return violations


def _has_zone_group(endpoint: StackResource, zone_groups: Sequence[StackResource]) -> bool:
    """A DNS zone group with a zone hangs on the endpoint (it writes the endpoint's A record)."""
    for group in zone_groups:
        if endpoint.urn not in group.dependencies:
            continue
        configs = group.props.get("privateDnsZoneConfigs")
        if is_unknown(configs) or (isinstance(configs, list) and configs):
            return True
    return False


def _identity_problems(props: Mapping[str, Any], wrapper: str, plain: str, what: str) -> list[str]:
    if get_path(props, plain)[0]:
        return [
            f"{plain} is set; in a private stack {what} must use {wrapper} with a SystemAssigned "
            "identity (a storage firewall admits Event Grid only as a trusted service with it)"
        ]
    present, kind = get_path(props, f"{wrapper}.identity.type")
    if present and not is_unknown(kind) and kind != "SystemAssigned":
        return [
            f"{wrapper}.identity.type is {kind!r}; it must be 'SystemAssigned' in a private stack "
            "(a user-assigned identity never passes a storage firewall)"
        ]
    return []


def check_private_event_delivery_identity(
    resources: Sequence[StackResource],
) -> list[StackViolation]:
    """In a private stack Event Grid delivers to storage and dead-letters with the topic's
    system-assigned identity: the only identity a firewall's trusted-service exception admits."""
    if not is_private_stack(resources):
        return []
    violations = []
    for subscription in _of_type(resources, *EVENT_SUBSCRIPTION_TYPES):
        props = subscription.props
        problems = _identity_problems(
            props, "deadLetterWithResourceIdentity", "deadLetterDestination", "dead-lettering"
        )
        kind = _known_str(
            get_path(props, "deliveryWithResourceIdentity.destination.endpointType")[1]
        ) or _known_str(get_path(props, "destination.endpointType")[1])
        if kind in STORAGE_ENDPOINT_TYPES:
            problems += _identity_problems(
                props, "deliveryWithResourceIdentity", "destination", "delivery to storage"
            )
        name = subscription.urn.rsplit("::", 1)[-1]
        violations += [
            StackViolation(f"event subscription {name}: {p}", subscription.urn) for p in problems
        ]
    return violations


def check_private_web_apps_integrated(resources: Sequence[StackResource]) -> list[StackViolation]:
    """In a private stack every web app reaches storage through the VNet (its private
    endpoints), so each one is VNet-integrated."""
    if not is_private_stack(resources):
        return []
    return [
        StackViolation(
            f"web app {app.urn.rsplit('::', 1)[-1]} has no virtualNetworkSubnetId; in a private "
            "stack it must be integrated into the VNet that holds the private endpoints",
            app.urn,
        )
        for app in _of_type(resources, WEB_APP)
        if "virtualNetworkSubnetId" not in app.props
    ]


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: Callable[[Sequence[StackResource]], list[StackViolation]]


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "recordings-lifecycle-policy-present",
        "Every storage account holding recordings has a lifecycle management policy.",
        check_recordings_lifecycle_present,
    ),
    StackRule(
        "recordings-soft-delete-present",
        "Every storage account holding recordings has blob service properties (soft delete).",
        check_recordings_soft_delete_present,
    ),
    StackRule(
        "basic-publishing-credentials-present",
        "Every web app disables FTP and SCM basic publishing credentials with their resources.",
        check_web_app_credentials_present,
    ),
    StackRule(
        "private-storage-no-public-network",
        "Private stacks: every storage account has public network access disabled, except one "
        "holding only queues and dead-letter containers, which may keep a deny-by-default "
        "firewall with no IP or VNet rule (trusted services only).",
        check_private_storage_network,
    ),
    StackRule(
        "private-storage-endpoints-present",
        "Private stacks: every storage account has a private endpoint for each sub-resource the "
        "app uses there (blob; queue where it holds queues; table except on the ingress account).",
        check_private_storage_endpoints,
    ),
    StackRule(
        "private-event-delivery-system-identity",
        "Private stacks: Event Grid delivers to storage and dead-letters with the topic's "
        "system-assigned identity.",
        check_private_event_delivery_identity,
    ),
    StackRule(
        "private-web-apps-vnet-integrated",
        "Private stacks: every web app is integrated into a VNet (virtualNetworkSubnetId).",
        check_private_web_apps_integrated,
    ),
)


def stack_violations(resources: Sequence[StackResource]) -> dict[str, list[StackViolation]]:
    """Every stack rule's violations, keyed by rule name (rules that pass are absent)."""
    found: dict[str, list[StackViolation]] = {}
    for rule in STACK_RULES:
        messages = rule.check(resources)
        if messages:
            found[rule.name] = messages
    return found
