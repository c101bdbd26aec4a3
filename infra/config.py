"""Typed, validated stack configuration, read once before any resource is registered.

Every key lives in one table (:data:`CONFIG_FIELDS`) with its type, default, rule and
description, so the program, the README table (``python -m scripts.config_table``) and the tests
all speak about the same keys. A bad value stops the program with ONE line that names the key,
the value and the rule, because a half-registered stack is worse than no stack.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROJECT = "acs-call-recording"
APP_TAG = PROJECT

#: Data locations an ACS resource accepts (Microsoft.Communication/communicationServices
#: ``dataLocation``); recordings and call data stay in this geography.
ACS_DATA_LOCATIONS = (
    "Africa",
    "Asia Pacific",
    "Australia",
    "Brazil",
    "Canada",
    "Europe",
    "France",
    "Germany",
    "India",
    "Japan",
    "Korea",
    "Norway",
    "Switzerland",
    "UAE",
    "UK",
    "United States",
)
#: Instance memory sizes a Flex Consumption (FC1) app may use.
FLEX_INSTANCE_MEMORY_MB = (512, 2048, 4096)
#: Tags the program sets on every taggable resource; the policy pack requires them.
REQUIRED_TAG_KEYS = ("app", "environment", "managed-by")
#: Values of the ``network`` key.
NETWORK_MODES = ("public", "private")
#: Regions where a Flex Consumption plan can be zone redundant. Microsoft publishes no static
#: list ("Enable zone redundancy in Azure Functions" points to `az functionapp
#: list-flexconsumption-locations --zone-redundant=true`); this is the intersection of the
#: Flex Consumption regions of Microsoft's Flex samples (functions-quickstart-python-http-azd,
#: infra/main.bicep) with the regions that have availability zones ("Azure regions with
#: availability zone support"), checked 2026-12-03. Regions with zones have ZRS storage too.
FLEX_ZONE_REDUNDANT_REGIONS = (
    "australiaeast",
    "brazilsouth",
    "canadacentral",
    "centralindia",
    "centralus",
    "eastasia",
    "eastus",
    "eastus2",
    "francecentral",
    "germanywestcentral",
    "italynorth",
    "japaneast",
    "koreacentral",
    "northeurope",
    "norwayeast",
    "southafricanorth",
    "southcentralus",
    "southeastasia",
    "spaincentral",
    "swedencentral",
    "uaenorth",
    "uksouth",
    "westeurope",
    "westus2",
    "westus3",
)
#: Private DNS zones of the storage sub-resources the private mode reaches (public cloud).
STORAGE_PRIVATE_DNS_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "queue": "privatelink.queue.core.windows.net",
    "table": "privatelink.table.core.windows.net",
}
#: ACS publishes no service tag for its callbacks (Call Automation sends them from Azure's public
#: cloud to a public endpoint: "Secure webhook endpoint", Azure Communication Services), so an
#: inbound allow-list that must still admit them needs this tag.
ACS_CALLBACK_SERVICE_TAG = "AzureCloud"
#: Values of ``apiAuth``: who may call the recording API (the app setting ``API_AUTH``).
API_AUTH_MODES = ("functionKey", "entraId", "both")
#: The modes in which the app requires an Entra ID bearer token.
API_TOKEN_MODES = ("entraId", "both")
#: Audiences one API accepts at most (an application ID URI and a client id are the usual pair).
MAX_API_AUDIENCES = 5

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_REGION = re.compile(r"^[a-z][a-z0-9]{2,39}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,9}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_TAG_KEY = re.compile(r"^[^<>%&\\?/]{1,512}$")
_VNET_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w._()]{1,90}"
    r"/providers/Microsoft\.Network/virtualNetworks/[A-Za-z0-9][-\w.]{0,62}[\w]$",
    re.IGNORECASE,
)
_DNS_ZONE_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w._()]{1,90}"
    r"/providers/Microsoft\.Network/privateDnsZones/(?P<zone>[a-z0-9.-]+)$",
    re.IGNORECASE,
)
_SUBNET_NAME = re.compile(r"^[A-Za-z0-9](?:[-\w.]{0,78}[\w])?$")
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: An application ID URI (``api://...`` or an https URI of a verified domain), or a client id.
_APP_ID_URI = re.compile(r"^(api|https)://[^\s?#,]+$")
#: An app role value as Entra ID allows it: 1-120 printable ASCII characters other than space,
#: ``"`` and ``\``, not starting with ``.``.
_APP_ROLE = re.compile(r"^(?!\.)[!#-\[\]-~]{1,120}$")


class ConfigError(ValueError):
    """A config value broke its rule; ``str()`` is the one line shown to the user."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class ConfigField:
    """One stack config key: how it is parsed, its default and the rule it must meet."""

    key: str
    type_name: str
    default: Any
    rule: str
    description: str
    parse: Callable[[str, str], Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class RecordingConfig:
    """The validated configuration of one stack. Build it with :func:`parse_config`."""

    stack: str
    location: str
    resource_group_name: str
    name_prefix: str
    data_location: str
    cool_after_days: int
    cold_after_days: int
    archive_after_days: int
    retention_days: int
    dead_letter_retention_days: int
    version_retention_days: int
    soft_delete_retention_days: int
    immutability_days: int
    lock_immutability: bool
    retain_archive_on_destroy: bool
    delete_from_acs_after_archive: bool
    publish_events: bool
    reconcile_every_minutes: int
    overdue_after_minutes: int
    lost_after_hours: int
    max_poison_replays: int
    event_max_delivery_attempts: int
    event_ttl_minutes: int
    function_instance_memory_mb: int
    function_maximum_instances: int
    custom_roles: bool
    role_propagation_wait_seconds: int
    alert_email: str
    log_retention_days: int
    tags: Mapping[str, str]
    deploy_code: bool
    package_path: str
    network: str
    zone_redundant: bool
    vnet_address_space: str
    integration_subnet_prefix: str
    private_endpoint_subnet_prefix: str
    existing_vnet_id: str
    existing_integration_subnet_name: str
    existing_private_endpoint_subnet_name: str
    existing_private_dns_zone_ids: Mapping[str, str]
    api_allowed_ip_ranges: Sequence[str]
    api_allowed_service_tags: Sequence[str]
    api_auth: str
    api_tenant_id: str
    api_audience: str
    api_allowed_client_ids: Sequence[str]
    api_required_role: str

    @property
    def requires_bearer_token(self) -> bool:
        """``apiAuth`` is ``entraId`` or ``both``: the app requires Entra ID access tokens."""
        return self.api_auth in API_TOKEN_MODES

    @property
    def api_audiences(self) -> tuple[str, ...]:
        """``apiAudience`` as its separate audiences."""
        return tuple(self.api_audience.split(",")) if self.api_audience else ()

    @property
    def private(self) -> bool:
        """True for ``network: private``: private endpoints, VNet integration, storage firewalls."""
        return self.network == "private"

    @property
    def resource_tags(self) -> dict[str, str]:
        """User tags plus the three required ones, which user tags cannot override."""
        return {
            **dict(self.tags),
            "app": APP_TAG,
            "environment": self.stack,
            "managed-by": "pulumi",
        }


# --- parsers: each gets (key, raw text) and raises ConfigError naming key, value and rule ----


def _parse_int(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, f"{key} ({raw!r}) must be a whole number") from None
        if not low <= value <= high:
            raise ConfigError(key, f"{key} ({value}) must be between {low} and {high}")
        return value

    return parse


def _parse_bool(key: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError(key, f"{key} ({raw!r}) must be true or false")


def _parse_pattern(pattern: re.Pattern[str], rule: str) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        value = raw.strip()
        if not pattern.fullmatch(value):
            raise ConfigError(key, f"{key} ({raw!r}) must be {rule}")
        return value

    return parse


def _parse_optional_pattern(pattern: re.Pattern[str], rule: str) -> Callable[[str, str], str]:
    required = _parse_pattern(pattern, rule)

    def parse(key: str, raw: str) -> str:
        return "" if not raw.strip() else required(key, raw)

    return parse


def _parse_minutes_dividing_an_hour(key: str, raw: str) -> int:
    value = _parse_int(1, 60)(key, raw)
    if 60 % value:
        raise ConfigError(
            key, f"{key} ({value}) must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)"
        )
    return value


def _parse_data_location(key: str, raw: str) -> str:
    by_lower = {name.lower(): name for name in ACS_DATA_LOCATIONS}
    value = by_lower.get(raw.strip().lower())
    if value is None:
        raise ConfigError(
            key,
            f"{key} ({raw!r}) must be one of the ACS data locations: "
            + ", ".join(ACS_DATA_LOCATIONS),
        )
    return value


def _parse_memory(key: str, raw: str) -> int:
    value = _parse_int(0, 1_000_000)(key, raw)
    if value not in FLEX_INSTANCE_MEMORY_MB:
        allowed = ", ".join(str(size) for size in FLEX_INSTANCE_MEMORY_MB)
        raise ConfigError(key, f"{key} ({value}) must be one of {allowed} (Flex Consumption)")
    return value


def _parse_tags(key: str, raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        raise ConfigError(key, f"{key} ({raw!r}) must be a JSON object of strings") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(key, f"{key} ({raw!r}) must be a JSON object of strings")
    for tag in value:
        if tag in REQUIRED_TAG_KEYS:
            raise ConfigError(key, f"{key} ({tag!r}) must not set a tag the program owns")
        if not _TAG_KEY.fullmatch(tag):
            raise ConfigError(
                key, f"{key} ({tag!r}) tag names must be 1-512 chars without <>%&\\?/"
            )
    return value


def _parse_text(key: str, raw: str) -> str:
    return raw.strip()


def _parse_choice(choices: Sequence[str]) -> Callable[[str, str], str]:
    def parse(key: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(key, f"{key} ({raw!r}) must be one of: {', '.join(choices)}")
        return value

    return parse


def _parse_cidr(longest_prefix: int) -> Callable[[str, str], str]:
    """An IPv4 network in CIDR form, no host bits, at most ``/longest_prefix`` long."""

    def parse(key: str, raw: str) -> str:
        try:
            network = ipaddress.IPv4Network(raw.strip(), strict=True)
        except ValueError:
            raise ConfigError(
                key, f"{key} ({raw!r}) must be an IPv4 network in CIDR form such as 10.60.0.0/24"
            ) from None
        if not 8 <= network.prefixlen <= longest_prefix:
            raise ConfigError(
                key, f"{key} ({raw!r}) must be a network from /8 to /{longest_prefix}"
            )
        if _unusable_in_a_vnet(network):
            raise ConfigError(
                key,
                f"{key} ({raw!r}) must not be a loopback, link-local, multicast, reserved or "
                "unspecified range, nor hold Azure's platform address 168.63.129.16 (a VNet "
                "cannot use them)",
            )
        return str(network)

    return parse


#: Azure's virtual public IP (DNS, health probes): never part of a VNet's address space.
_AZURE_PLATFORM_ADDRESS = ipaddress.IPv4Address("168.63.129.16")
#: "This network" (RFC 1122): not an address range a network can hold.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def _unusable_in_a_vnet(network: ipaddress.IPv4Network) -> bool:
    return (
        network.is_loopback
        or network.is_link_local
        or network.is_multicast
        or network.is_reserved
        or network.is_unspecified
        or network.subnet_of(_THIS_NETWORK)
        or _AZURE_PLATFORM_ADDRESS in network
    )


def _parse_json(key: str, raw: str, kind: type, rule: str) -> Any:
    """``raw`` as JSON of ``kind`` (``list`` or ``dict``); empty text is an empty one."""
    try:
        value = json.loads(raw) if raw.strip() else kind()
    except json.JSONDecodeError:
        raise ConfigError(key, f"{key} ({raw!r}) must be {rule}") from None
    if not isinstance(value, kind):
        raise ConfigError(key, f"{key} ({raw!r}) must be {rule}")
    return value


def _parse_string_list(
    item_rule: str, item_ok: Callable[[str], bool]
) -> Callable[[str, str], list[str]]:
    def parse(key: str, raw: str) -> list[str]:
        value = _parse_json(key, raw, list, "a JSON list of strings")
        items: list[Any] = value
        for item in items:
            if not isinstance(item, str) or not item_ok(item):
                raise ConfigError(key, f"{key} ({item!r}) must be {item_rule}")
        return items

    return parse


def _is_ip_range(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


def _parse_api_auth(key: str, raw: str) -> str:
    """One of :data:`API_AUTH_MODES`, case-insensitively, in its canonical spelling."""
    by_lower = {mode.lower(): mode for mode in API_AUTH_MODES}
    mode = by_lower.get(raw.strip().lower())
    if mode is None:
        raise ConfigError(key, f"{key} ({raw!r}) must be one of: {', '.join(API_AUTH_MODES)}")
    return mode


def _is_audience(text: str) -> bool:
    return bool(_GUID.fullmatch(text) or _APP_ID_URI.fullmatch(text))


def _parse_audiences(key: str, raw: str) -> str:
    """Empty, or one or more audiences separated by commas (the first is what clients ask for),
    given back with the blanks around each removed."""
    if not raw.strip():
        return ""
    items = [item.strip() for item in raw.split(",")]
    for item in items:
        if not _is_audience(item):
            raise ConfigError(
                key,
                f"{key} ({item!r}) must be an application ID URI (api://... or https://...) or "
                "the API's client id (a GUID); separate two with a comma",
            )
    if len(items) > MAX_API_AUDIENCES or len(set(items)) != len(items):
        raise ConfigError(
            key, f"{key} ({raw!r}) must hold 1-{MAX_API_AUDIENCES} different audiences"
        )
    return ",".join(items)


def _parse_client_ids(key: str, raw: str) -> list[str]:
    items = _parse_string_list("a client application id (a GUID)", _is_guid)(key, raw)
    if len(set(item.lower() for item in items)) != len(items):
        raise ConfigError(key, f"{key} ({raw!r}) must not list a client id twice")
    return [item.lower() for item in items]


def _is_guid(text: str) -> bool:
    return _GUID.fullmatch(text) is not None


def _parse_dns_zone_ids(key: str, raw: str) -> dict[str, str]:
    rule = "a JSON object of private DNS zone name to zone resource id"
    value = _parse_json(key, raw, dict, rule)
    zones: dict[str, Any] = value
    known = tuple(STORAGE_PRIVATE_DNS_ZONES.values())
    for zone, zone_id in zones.items():
        if zone not in known:
            raise ConfigError(
                key, f"{key} ({zone!r}) must name one of the zones: {', '.join(known)}"
            )
        match = _DNS_ZONE_ID.fullmatch(zone_id) if isinstance(zone_id, str) else None
        if match is None or match["zone"].lower() != zone:
            raise ConfigError(
                key,
                f"{key} ({zone_id!r}) must be the id of the Microsoft.Network/privateDnsZones "
                f"resource named {zone}",
            )
    return zones


CONFIG_FIELDS: tuple[ConfigField, ...] = (
    ConfigField(
        "location",
        "string",
        "westeurope",
        "Azure region name (lowercase, e.g. westeurope)",
        "Region of every regional resource, the events custom topic included (ACS and its "
        "Event Grid system topic are global).",
        _parse_pattern(_REGION, "a lowercase Azure region name such as westeurope"),
    ),
    ConfigField(
        "resourceGroupName",
        "string",
        "",
        "empty or an existing resource group name",
        "Deploy into this existing resource group instead of creating one.",
        _parse_optional_pattern(_RESOURCE_GROUP, "a resource group name (1-90 chars)"),
    ),
    ConfigField(
        "namePrefix",
        "string",
        "acsrec",
        "2-10 lowercase letters/digits, letter first",
        "Start of every resource name; storage names add a random suffix.",
        _parse_pattern(_PREFIX, "2-10 lowercase letters or digits starting with a letter"),
    ),
    ConfigField(
        "dataLocation",
        "string",
        "Europe",
        "one of the ACS data locations",
        "Where ACS keeps call data at rest (e.g. Europe, United States, UK).",
        _parse_data_location,
    ),
    ConfigField(
        "coolAfterDays",
        "int",
        30,
        "0-36500, < coldAfterDays, < archiveAfterDays",
        "Recordings move to the Cool tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "coldAfterDays",
        "int",
        90,
        "0-36500, < archiveAfterDays",
        "Recordings move to the Cold tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "archiveAfterDays",
        "int",
        180,
        "0-36500, < retentionDays",
        "Recordings move to the Archive tier this many days after they were written.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "retentionDays",
        "int",
        2555,
        "1-36500",
        "Recordings are deleted this many days after they were written (2555 = 7 years).",
        _parse_int(1, 36500),
    ),
    ConfigField(
        "deadLetterRetentionDays",
        "int",
        30,
        "1-365",
        "Dead-lettered Event Grid events are deleted after this many days.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "versionRetentionDays",
        "int",
        30,
        "1-365",
        "Previous blob versions are deleted this many days after they were superseded.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "softDeleteRetentionDays",
        "int",
        14,
        "1-365",
        "Deleted blobs and containers can be restored for this many days.",
        _parse_int(1, 365),
    ),
    ConfigField(
        "immutabilityDays",
        "int",
        0,
        "0-36500 (0 = off), <= retentionDays",
        "Time-based WORM retention on the recordings container.",
        _parse_int(0, 36500),
    ),
    ConfigField(
        "lockImmutability",
        "bool",
        False,
        "true only with immutabilityDays > 0",
        "Lock the immutability policy (irreversible: nobody can shorten or remove it).",
        _parse_bool,
    ),
    ConfigField(
        "retainArchiveOnDestroy",
        "bool",
        True,
        "true or false",
        "Keep the archive account and its recordings on pulumi destroy.",
        _parse_bool,
    ),
    ConfigField(
        "deleteFromAcsAfterArchive",
        "bool",
        True,
        "true or false",
        "Delete the ACS copy of a recording once it is archived and verified.",
        _parse_bool,
    ),
    ConfigField(
        "publishEvents",
        "bool",
        True,
        "true or false",
        "Publish a CloudEvent (RecordingArchived, ...Lost, ...Failed, ...Overdue, ...Erased) to "
        "an Event Grid custom topic the program creates (CloudEvents 1.0 input, local auth off; "
        "the app publishes with its managed identity). Subscribe to the topic to act on them.",
        _parse_bool,
    ),
    ConfigField(
        "reconcileEveryMinutes",
        "int",
        10,
        "1-60, a divisor of 60",
        "The reconciler runs this often: dead letters and outage-poisoned events back to the "
        "queue, overdue and lost recordings marked, failed ACS deletions retried.",
        _parse_minutes_dividing_an_hour,
    ),
    ConfigField(
        "overdueAfterMinutes",
        "int",
        30,
        "5-720",
        "A recording stopped this long ago with no archive event is marked overdue and "
        "RECORDING_OVERDUE is logged (the log alert fires).",
        _parse_int(5, 720),
    ),
    ConfigField(
        "lostAfterHours",
        "int",
        25,
        "24-72 (ACS keeps recordings about 24 h)",
        "An overdue recording is marked lost (RECORDING_LOST) this long after its stop, once "
        "ACS's retention window has certainly passed.",
        _parse_int(24, 72),
    ),
    ConfigField(
        "maxPoisonReplays",
        "int",
        5,
        "0-20 (0 = never replay)",
        "The reconciler puts an event poisoned by an outage back on the queue at most this many "
        "times (spaced 15 min, 30 min, 1 h, ...); then it is left for a person.",
        _parse_int(0, 20),
    ),
    ConfigField(
        "eventMaxDeliveryAttempts",
        "int",
        30,
        "2-30 (1 would mean no retry)",
        "Event Grid delivery attempts before an event is dead-lettered.",
        _parse_int(2, 30),
    ),
    ConfigField(
        "eventTtlMinutes",
        "int",
        1440,
        "1-1440",
        "Event Grid keeps retrying an event for at most this many minutes.",
        _parse_int(1, 1440),
    ),
    ConfigField(
        "functionInstanceMemoryMb",
        "int",
        2048,
        "512, 2048 or 4096",
        "Memory of each Flex Consumption instance.",
        _parse_memory,
    ),
    ConfigField(
        "functionMaximumInstances",
        "int",
        40,
        "40-1000",
        "Scale-out limit of the Function App. Flex Consumption's documented range is 40-1000 "
        "(lower limits exist only in some regions' newer releases, so they are not offered); "
        "the region's memory quota (512,000 MB by default: 250 instances of 2048 MB) caps real "
        "scale-out.",
        _parse_int(40, 1000),
    ),
    ConfigField(
        "customRoles",
        "bool",
        True,
        "true or false",
        "Grant custom roles with exactly the storage permissions the code uses (the deployer "
        "needs Microsoft.Authorization/roleDefinitions/write); false grants the least built-in "
        "roles that cover them (Storage Blob Data Owner on the recordings container).",
        _parse_bool,
    ),
    ConfigField(
        "rolePropagationWaitSeconds",
        "int",
        120,
        "0-900",
        "Wait this long after new custom role definitions before assigning them, and after "
        "Event Grid's role assignments before creating the subscription Azure validates with "
        "them (first deployment, or when they are replaced).",
        _parse_int(0, 900),
    ),
    ConfigField(
        "alertEmail",
        "string",
        "",
        "empty or an email address",
        "Receives the alerts; empty keeps the action group without receivers.",
        _parse_optional_pattern(_EMAIL, "an email address such as ops@example.com"),
    ),
    ConfigField(
        "logRetentionDays", "int", 30, "30-730", "Log Analytics retention.", _parse_int(30, 730)
    ),
    ConfigField(
        "tags",
        "object",
        {},
        "JSON object of strings; not app/environment/managed-by",
        "Extra tags on every taggable resource.",
        _parse_tags,
    ),
    ConfigField(
        "deployCode",
        "bool",
        True,
        "true or false",
        "Deploy the function code (OneDeploy) during pulumi up.",
        _parse_bool,
    ),
    ConfigField(
        "packagePath",
        "string",
        "",
        "empty or a path to a zip file",
        "Deploy this prebuilt zip instead of building dist/functionapp.zip.",
        _parse_text,
    ),
    ConfigField(
        "network",
        "string",
        "public",
        "public or private",
        "private: storage behind private endpoints and firewalls, the Function App integrated "
        "into a VNet with a NAT gateway for egress (see Private networking).",
        _parse_choice(NETWORK_MODES),
    ),
    ConfigField(
        "zoneRedundant",
        "bool",
        False,
        "true only in a region where Flex Consumption is zone redundant",
        "Zone-redundant Flex Consumption plan and ZRS runtime storage (the archive stays GRS).",
        _parse_bool,
    ),
    ConfigField(
        "vnetAddressSpace",
        "string",
        "10.60.0.0/23",
        "IPv4 CIDR /8-/24, no reserved range; private only, without existingVnetId",
        "Address space of the VNet the private mode creates.",
        _parse_cidr(24),
    ),
    ConfigField(
        "integrationSubnetPrefix",
        "string",
        "10.60.0.0/24",
        "IPv4 CIDR /8-/27 inside vnetAddressSpace",
        "Subnet delegated to Microsoft.App/environments for the Function App's VNet integration.",
        _parse_cidr(27),
    ),
    ConfigField(
        "privateEndpointSubnetPrefix",
        "string",
        "10.60.1.0/27",
        "IPv4 CIDR /8-/28 inside vnetAddressSpace, apart from the integration subnet",
        "Subnet of the storage private endpoints.",
        _parse_cidr(28),
    ),
    ConfigField(
        "existingVnetId",
        "string",
        "",
        "empty or a Microsoft.Network/virtualNetworks resource id; private only",
        "Use this VNet (and its two subnets below) instead of creating one; its egress is yours.",
        _parse_optional_pattern(_VNET_ID, "a Microsoft.Network/virtualNetworks resource id"),
    ),
    ConfigField(
        "existingIntegrationSubnetName",
        "string",
        "",
        "subnet name; required with existingVnetId",
        "Subnet of existingVnetId delegated to Microsoft.App/environments, used by nothing else.",
        _parse_optional_pattern(_SUBNET_NAME, "a subnet name (1-80 chars)"),
    ),
    ConfigField(
        "existingPrivateEndpointSubnetName",
        "string",
        "",
        "subnet name; required with existingVnetId",
        "Subnet of existingVnetId that holds the private endpoints.",
        _parse_optional_pattern(_SUBNET_NAME, "a subnet name (1-80 chars)"),
    ),
    ConfigField(
        "existingPrivateDnsZoneIds",
        "object",
        {},
        "JSON object: all of privatelink.{blob,queue,table}.core.windows.net to zone id, or none; "
        "private only, with existingVnetId",
        "Register the endpoints in these existing zones (linked by you) instead of creating "
        "and linking zones.",
        _parse_dns_zone_ids,
    ),
    ConfigField(
        "apiAllowedIpRanges",
        "list",
        [],
        f"JSON list of CIDRs; with it, apiAllowedServiceTags must hold {ACS_CALLBACK_SERVICE_TAG}",
        "Only these ranges (and the tags below) may call the API; empty = anyone (the key and "
        "ACS's JWT still apply). The SCM site keeps its own (open) rules for deployments.",
        _parse_string_list("an IP address or CIDR range", _is_ip_range),
    ),
    ConfigField(
        "apiAllowedServiceTags",
        "list",
        [],
        f"JSON list of Azure service tags; must include {ACS_CALLBACK_SERVICE_TAG} when set",
        "Service tags allowed to call the API besides apiAllowedIpRanges.",
        _parse_string_list(
            "an Azure service tag such as AzureCloud",
            lambda tag: _SERVICE_TAG.fullmatch(tag) is not None,
        ),
    ),
    ConfigField(
        "apiAuth",
        "string",
        "functionKey",
        "functionKey, entraId or both",
        "Who may call the recording API: the function key (checked by the Functions host), an "
        "Entra ID access token (checked by the app; no key), or both. Callbacks (ACS's JWT) and "
        "health (anonymous) are the same in every mode. See API authentication.",
        _parse_api_auth,
    ),
    ConfigField(
        "apiTenantId",
        "string",
        "",
        "a GUID; required with entraId or both, empty with functionKey",
        "Entra ID tenant whose access tokens the API accepts (its signing keys, its issuer).",
        _parse_optional_pattern(_GUID, "a tenant id (a GUID)"),
    ),
    ConfigField(
        "apiAudience",
        "string",
        "",
        "application ID URI (api://...) and/or client id (GUID), comma-separated; required "
        "with entraId or both",
        "Accepted token audiences: v1.0 tokens carry the application ID URI, v2.0 tokens the "
        "client id, so give both to accept either. The first is the API_AUDIENCE stack output "
        "clients ask tokens for.",
        _parse_audiences,
    ),
    ConfigField(
        "apiAllowedClientIds",
        "list",
        [],
        "JSON list of GUIDs; entraId or both only, where it or apiRequiredRole is required",
        "Only these client applications (azp/appid) may call the API; empty = any client that "
        "holds apiRequiredRole.",
        _parse_client_ids,
    ),
    ConfigField(
        "apiRequiredRole",
        "string",
        "",
        "empty or an app role value (no spaces, 1-120 chars); entraId or both only, where it "
        "or apiAllowedClientIds is required",
        "Tokens must carry this app role in their roles claim (define it with allowedMemberTypes "
        "Application so only applications can hold it).",
        _parse_optional_pattern(_APP_ROLE, "an app role value: 1-120 characters, no spaces"),
    ),
)
FIELDS_BY_KEY = {f.key: f for f in CONFIG_FIELDS}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def parse_config(
    raw: Mapping[str, str], stack: str, *, secret_keys: frozenset[str] = frozenset()
) -> RecordingConfig:
    """Parse and validate stack config given as ``{key: text}`` (keys without the project prefix).

    :param secret_keys: keys set with ``pulumi config set --secret``: checked like the others,
        but a problem with one never shows its value.
    :raises ConfigError: the first of :func:`config_problems`: an unknown key, a value that
        breaks its own rule, or a combination of values that cannot work together.
    """
    problems = [
        _without_secret_values(problem, raw, secret_keys) for problem in config_problems(raw)
    ]
    if problems:
        raise problems[0]
    values = {
        _snake(f.key): f.parse(f.key, raw.get(f.key, _default_text(f.default)))
        for f in CONFIG_FIELDS
    }
    return RecordingConfig(stack=stack, **values)


def config_problems(
    raw: Mapping[str, str], *, unreadable: frozenset[str] = frozenset()
) -> list[ConfigError]:
    """Every broken rule at once (unknown keys, then each key in table order, then combinations).

    The preflight lists them all, so three bad keys take one run to fix, not three. A
    combination is judged only when each of its keys parsed on its own.

    :param unreadable: keys whose value cannot be read here (encrypted in the stack file, which
        only the program sees decrypted): each must be a known key; its own rule, the
        combinations it is part of and the network rules are left to the program.
    """
    problems = [
        ConfigError(
            key,
            f"{key} is not a known config key of {PROJECT}; known keys: "
            + ", ".join(FIELDS_BY_KEY),
        )
        for key in sorted(unreadable)
        if key not in FIELDS_BY_KEY
    ]
    problems += [
        ConfigError(
            key,
            f"{key} is not a known config key of {PROJECT}; known keys: "
            + ", ".join(FIELDS_BY_KEY),
        )
        for key in raw
        if key not in FIELDS_BY_KEY
    ]
    values: dict[str, Any] = {}
    for f in CONFIG_FIELDS:
        if f.key in unreadable:
            continue
        try:
            values[f.key] = f.parse(f.key, raw.get(f.key, _default_text(f.default)))
        except ConfigError as error:
            problems.append(error)
    for keys, rule in _COMBINATIONS:
        if all(key in values for key in keys):
            problem = rule(*(values[key] for key in keys))
            if problem is not None:
                problems.append(problem)
    if len(values) == len(CONFIG_FIELDS):  # (not with an unreadable key)
        # The network rules read many keys at once; they report their first broken rule.
        parsed = {_snake(key): value for key, value in values.items()}
        try:
            _check_network(RecordingConfig(stack="", **parsed))
        except ConfigError as error:
            problems.append(error)
    if all(key in values for key in _API_TOKEN_KEYS) and "apiAuth" in values:
        problems += _api_auth_problems(values)
    return problems


#: Keys that only the token modes read.
_API_TOKEN_KEYS = ("apiTenantId", "apiAudience", "apiAllowedClientIds", "apiRequiredRole")
#: ... of which these must be set in those modes.
_API_TOKEN_REQUIRED_KEYS = ("apiTenantId", "apiAudience")


def _api_auth_problems(values: Mapping[str, Any]) -> list[ConfigError]:
    """A token mode names a tenant, an audience and who among the tenant's callers may call
    (client ids, an app role or both); ``functionKey`` sets no token key (a key left from a
    switch back would look like a token check that is not there)."""
    mode = values["apiAuth"]
    if mode in API_TOKEN_MODES:
        problems = [
            ConfigError(key, f"{key} is required with apiAuth {mode}")
            for key in _API_TOKEN_REQUIRED_KEYS
            if not values[key]
        ]
        if not values["apiAllowedClientIds"] and not values["apiRequiredRole"]:
            problems.append(_open_tenant_problem(mode))
        return problems
    return [
        ConfigError(
            key,
            f"{key} ({values[key]!r}) applies only with apiAuth entraId or both "
            f"(apiAuth is {mode})",
        )
        for key in _API_TOKEN_KEYS
        if values[key]
    ]


def _open_tenant_problem(mode: str) -> ConfigError:
    """Entra ID issues an app-only token for any API to any service principal of the tenant
    (unless the API requires assignment), so a tenant and an audience alone admit every app."""
    return ConfigError(
        "apiAllowedClientIds",
        f"apiAllowedClientIds or apiRequiredRole is required with apiAuth {mode}: a tenant and "
        "an audience alone admit any application or user of the tenant that obtains a token",
    )


def _without_secret_values(
    problem: ConfigError, raw: Mapping[str, str], secret_keys: frozenset[str]
) -> ConfigError:
    """``problem``, or a message without any value when a secret value may be in it.

    The messages quote the values they judge (``key ('value') must be ...``), and a combination
    or network rule quotes the values of other keys too: any message that concerns a secret key,
    or that holds a secret value or a piece of one, is replaced by the key's rule alone.
    """
    secrets = [raw[key] for key in secret_keys if raw.get(key)]
    message = str(problem)
    pieces = {piece for text in secrets for piece in re.findall(r"[^\s\"',\[\]{}:]+", text)}
    if problem.key not in secret_keys and not any(piece in message for piece in pieces):
        return problem
    field_ = FIELDS_BY_KEY.get(problem.key)
    rule = f": {field_.rule}" if field_ is not None else ""
    return ConfigError(
        problem.key,
        f"{problem.key} breaks its rule{rule} (a secret value is involved, so no value is "
        "shown; `pulumi config get --stack <stack> <key>` shows it to you)",
    )


def _must_be_less(a_key: str, b_key: str) -> tuple[tuple[str, ...], Callable[..., Any]]:
    def rule(a: int, b: int) -> ConfigError | None:
        return (
            None if a < b else ConfigError(a_key, f"{a_key} ({a}) must be less than {b_key} ({b})")
        )

    return (a_key, b_key), rule


#: Keys that only the private mode reads, with the config attribute that holds each.
_PRIVATE_ONLY_KEYS = (
    ("vnetAddressSpace", "vnet_address_space"),
    ("integrationSubnetPrefix", "integration_subnet_prefix"),
    ("privateEndpointSubnetPrefix", "private_endpoint_subnet_prefix"),
    ("existingVnetId", "existing_vnet_id"),
    ("existingIntegrationSubnetName", "existing_integration_subnet_name"),
    ("existingPrivateEndpointSubnetName", "existing_private_endpoint_subnet_name"),
    ("existingPrivateDnsZoneIds", "existing_private_dns_zone_ids"),
)
#: Keys that describe the VNet the program creates (ignored with an existing VNet).
_CREATED_VNET_KEYS = _PRIVATE_ONLY_KEYS[:3]


def _changed(key: str, value: object) -> bool:
    return value != FIELDS_BY_KEY[key].default


def _check_network(cfg: RecordingConfig) -> None:
    """Network rules: zones where they exist, private keys only in private mode, subnets that fit
    the VNet, an existing VNet named with both subnets, an allow-list that still admits ACS."""
    if cfg.zone_redundant and cfg.location not in FLEX_ZONE_REDUNDANT_REGIONS:
        raise ConfigError(
            "zoneRedundant",
            f"zoneRedundant (true) needs a region where Flex Consumption is zone redundant; "
            f"location {cfg.location!r} is not one of: {', '.join(FLEX_ZONE_REDUNDANT_REGIONS)}",
        )
    if not cfg.private:
        for key, attribute in _PRIVATE_ONLY_KEYS:
            value = getattr(cfg, attribute)
            if _changed(key, value):
                raise ConfigError(
                    key, f"{key} ({value!r}) applies only to network: private (network is public)"
                )
    _check_existing_vnet(cfg)
    _check_existing_dns_zones(cfg)
    if not cfg.existing_vnet_id:
        _check_subnets(cfg)
    if (cfg.api_allowed_ip_ranges or cfg.api_allowed_service_tags) and (
        ACS_CALLBACK_SERVICE_TAG not in cfg.api_allowed_service_tags
    ):
        raise ConfigError(
            "apiAllowedServiceTags",
            f"apiAllowedServiceTags ({list(cfg.api_allowed_service_tags)!r}) must include "
            f"{ACS_CALLBACK_SERVICE_TAG} when the API is restricted: ACS sends its callbacks from "
            "Azure's public cloud and publishes no service tag of its own",
        )


def _check_existing_vnet(cfg: RecordingConfig) -> None:
    subnets = (
        ("existingIntegrationSubnetName", cfg.existing_integration_subnet_name),
        ("existingPrivateEndpointSubnetName", cfg.existing_private_endpoint_subnet_name),
    )
    if cfg.existing_vnet_id:
        for key, name in subnets:
            if not name:
                raise ConfigError(key, f"{key} is required with existingVnetId: name its subnet")
        if subnets[0][1] == subnets[1][1]:
            raise ConfigError(
                "existingPrivateEndpointSubnetName",
                f"existingPrivateEndpointSubnetName ({subnets[1][1]!r}) must differ from "
                "existingIntegrationSubnetName: the delegated subnet can hold nothing else",
            )
        for key, attribute in _CREATED_VNET_KEYS:
            value = getattr(cfg, attribute)
            if _changed(key, value):
                raise ConfigError(
                    key,
                    f"{key} ({value!r}) describes a VNet the program creates; with existingVnetId "
                    "the existing subnets are used",
                )
    else:
        for key, name in subnets:
            if name:
                raise ConfigError(key, f"{key} ({name!r}) needs existingVnetId (its VNet)")


def _check_existing_dns_zones(cfg: RecordingConfig) -> None:
    """Existing zones belong to a landing zone's hub, which links them to its VNets: they come
    with the hub's spoke (existingVnetId), and all together, since a zone this program created
    beside them would shadow or clash with the hub's zone of the same name."""
    zones = cfg.existing_private_dns_zone_ids
    if not zones:
        return
    if not cfg.existing_vnet_id:
        raise ConfigError(
            "existingPrivateDnsZoneIds",
            "existingPrivateDnsZoneIds needs existingVnetId: existing zones are linked by their "
            "owner to its own VNets, so the VNet this program creates would never resolve them",
        )
    missing = [zone for zone in STORAGE_PRIVATE_DNS_ZONES.values() if zone not in zones]
    if missing:
        raise ConfigError(
            "existingPrivateDnsZoneIds",
            f"existingPrivateDnsZoneIds (missing {', '.join(missing)}) must hold all of "
            f"{', '.join(STORAGE_PRIVATE_DNS_ZONES.values())} or none: the stack reaches storage "
            "on all three",
        )


def _check_subnets(cfg: RecordingConfig) -> None:
    space = ipaddress.IPv4Network(cfg.vnet_address_space)
    integration = ipaddress.IPv4Network(cfg.integration_subnet_prefix)
    endpoints = ipaddress.IPv4Network(cfg.private_endpoint_subnet_prefix)
    for key, subnet in (
        ("integrationSubnetPrefix", integration),
        ("privateEndpointSubnetPrefix", endpoints),
    ):
        if not subnet.subnet_of(space):
            raise ConfigError(key, f"{key} ({subnet}) must lie inside vnetAddressSpace ({space})")
    if integration.overlaps(endpoints):
        raise ConfigError(
            "privateEndpointSubnetPrefix",
            f"privateEndpointSubnetPrefix ({endpoints}) must not overlap integrationSubnetPrefix "
            f"({integration})",
        )


def _immutability_within_retention(immutability: int, retention: int) -> ConfigError | None:
    if immutability <= retention:
        return None
    return ConfigError(
        "immutabilityDays",
        f"immutabilityDays ({immutability}) must not be longer than retentionDays "
        f"({retention}): the lifecycle rule could not delete what WORM protects",
    )


def _lock_needs_immutability(lock: bool, immutability: int) -> ConfigError | None:
    if not lock or immutability != 0:
        return None
    return ConfigError(
        "lockImmutability",
        "lockImmutability (true) needs immutabilityDays > 0: there is no policy to lock",
    )


#: Cross-field rules: a lifecycle that moves backwards or WORM that outlives deletion.
_COMBINATIONS: tuple[tuple[tuple[str, ...], Callable[..., ConfigError | None]], ...] = (
    _must_be_less("coolAfterDays", "archiveAfterDays"),
    _must_be_less("coldAfterDays", "archiveAfterDays"),
    _must_be_less("coolAfterDays", "coldAfterDays"),
    _must_be_less("archiveAfterDays", "retentionDays"),
    (("immutabilityDays", "retentionDays"), _immutability_within_retention),
    (("lockImmutability", "immutabilityDays"), _lock_needs_immutability),
)


def read_stack_config(stack: str) -> RecordingConfig:
    """Read this project's keys from the Pulumi runtime config and validate them."""
    # The raw map (pulumi.Config has no key listing), and which keys were set as secrets.
    from pulumi.runtime.config import CONFIG, is_config_secret

    prefix = f"{PROJECT}:"
    raw = {
        key[len(prefix) :]: (value if isinstance(value, str) else json.dumps(value))
        for key, value in CONFIG.get().items()
        if key.startswith(prefix)
    }
    secret_keys = frozenset(key for key in raw if is_config_secret(prefix + key))
    return parse_config(raw, stack, secret_keys=secret_keys)
