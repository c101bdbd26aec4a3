"""Typed config: one case per rule, each asserting the exact one-line message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.config import (
    CONFIG_FIELDS,
    FLEX_ZONE_REDUNDANT_REGIONS,
    PROJECT,
    ConfigError,
    config_problems,
    parse_config,
)
from tests.infra.harness import run_program
from tests.infra.mocks import SUBSCRIPTION_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
_NETWORK = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-net/providers/Microsoft.Network"
VNET_ID = f"{_NETWORK}/virtualNetworks/vnet-spoke"
SUBNET_ID = f"{VNET_ID}/subnets/snet-a"
SUBNETS = {"existingIntegrationSubnetName": "snet-a", "existingPrivateEndpointSubnetName": "snet-b"}
BLOB_ZONE = "privatelink.blob.core.windows.net"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
QUEUE_ZONE_ID = f"{_NETWORK}/privateDnsZones/privatelink.queue.core.windows.net"
HUB_ZONES = {
    zone: f"{_NETWORK}/privateDnsZones/{zone}"
    for zone in (
        BLOB_ZONE,
        "privatelink.queue.core.windows.net",
        "privatelink.table.core.windows.net",
    )
}

RULES = [
    # (raw config, key named, message)
    (
        {"location": "West Europe"},
        "location",
        "location ('West Europe') must be a lowercase Azure region name such as westeurope",
    ),
    (
        {"resourceGroupName": "bad/name"},
        "resourceGroupName",
        "resourceGroupName ('bad/name') must be a resource group name (1-90 chars)",
    ),
    (
        {"namePrefix": "Acs-Rec"},
        "namePrefix",
        "namePrefix ('Acs-Rec') must be 2-10 lowercase letters or digits starting with a letter",
    ),
    (
        {"dataLocation": "Mars"},
        "dataLocation",
        "dataLocation ('Mars') must be one of the ACS data locations: Africa, Asia Pacific, "
        "Australia, Brazil, Canada, Europe, France, Germany, India, Japan, Korea, Norway, "
        "Switzerland, UAE, UK, United States",
    ),
    (
        {"coolAfterDays": "thirty"},
        "coolAfterDays",
        "coolAfterDays ('thirty') must be a whole number",
    ),
    ({"coolAfterDays": "-1"}, "coolAfterDays", "coolAfterDays (-1) must be between 0 and 36500"),
    (
        {"coolAfterDays": "200"},
        "coolAfterDays",
        "coolAfterDays (200) must be less than archiveAfterDays (180)",
    ),
    (
        {"coldAfterDays": "200"},
        "coldAfterDays",
        "coldAfterDays (200) must be less than archiveAfterDays (180)",
    ),
    (
        {"coolAfterDays": "90"},
        "coolAfterDays",
        "coolAfterDays (90) must be less than coldAfterDays (90)",
    ),
    (
        {"retentionDays": "180"},
        "archiveAfterDays",
        "archiveAfterDays (180) must be less than retentionDays (180)",
    ),
    (
        {"retentionDays": "40000"},
        "retentionDays",
        "retentionDays (40000) must be between 1 and 36500",
    ),
    (
        {"deadLetterRetentionDays": "0"},
        "deadLetterRetentionDays",
        "deadLetterRetentionDays (0) must be between 1 and 365",
    ),
    (
        {"versionRetentionDays": "366"},
        "versionRetentionDays",
        "versionRetentionDays (366) must be between 1 and 365",
    ),
    (
        {"softDeleteRetentionDays": "0"},
        "softDeleteRetentionDays",
        "softDeleteRetentionDays (0) must be between 1 and 365",
    ),
    (
        {"immutabilityDays": "3000"},
        "immutabilityDays",
        "immutabilityDays (3000) must not be longer than retentionDays (2555): the lifecycle rule "
        "could not delete what WORM protects",
    ),
    (
        {"lockImmutability": "true"},
        "lockImmutability",
        "lockImmutability (true) needs immutabilityDays > 0: there is no policy to lock",
    ),
    (
        {"lockImmutability": "yes"},
        "lockImmutability",
        "lockImmutability ('yes') must be true or false",
    ),
    (
        {"retainArchiveOnDestroy": "1"},
        "retainArchiveOnDestroy",
        "retainArchiveOnDestroy ('1') must be true or false",
    ),
    (
        {"deleteFromAcsAfterArchive": "maybe"},
        "deleteFromAcsAfterArchive",
        "deleteFromAcsAfterArchive ('maybe') must be true or false",
    ),
    (
        {"reconcileEveryMinutes": "7"},
        "reconcileEveryMinutes",
        "reconcileEveryMinutes (7) must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)",
    ),
    (
        {"reconcileEveryMinutes": "0"},
        "reconcileEveryMinutes",
        "reconcileEveryMinutes (0) must be between 1 and 60",
    ),
    (
        {"overdueAfterMinutes": "721"},
        "overdueAfterMinutes",
        "overdueAfterMinutes (721) must be between 5 and 720",
    ),
    (
        {"lostAfterHours": "23"},
        "lostAfterHours",
        "lostAfterHours (23) must be between 24 and 72",
    ),
    (
        {"maxPoisonReplays": "-1"},
        "maxPoisonReplays",
        "maxPoisonReplays (-1) must be between 0 and 20",
    ),
    (
        {"eventMaxDeliveryAttempts": "31"},
        "eventMaxDeliveryAttempts",
        "eventMaxDeliveryAttempts (31) must be between 2 and 30",
    ),
    (
        {"eventMaxDeliveryAttempts": "1"},
        "eventMaxDeliveryAttempts",
        "eventMaxDeliveryAttempts (1) must be between 2 and 30",
    ),
    (
        {"eventTtlMinutes": "1441"},
        "eventTtlMinutes",
        "eventTtlMinutes (1441) must be between 1 and 1440",
    ),
    (
        {"functionInstanceMemoryMb": "1024"},
        "functionInstanceMemoryMb",
        "functionInstanceMemoryMb (1024) must be one of 512, 2048, 4096 (Flex Consumption)",
    ),
    (
        {"functionMaximumInstances": "39"},
        "functionMaximumInstances",
        "functionMaximumInstances (39) must be between 40 and 1000",
    ),
    (
        {"alertEmail": "ops@"},
        "alertEmail",
        "alertEmail ('ops@') must be an email address such as ops@example.com",
    ),
    (
        {"logRetentionDays": "7"},
        "logRetentionDays",
        "logRetentionDays (7) must be between 30 and 730",
    ),
    ({"tags": "[1, 2]"}, "tags", "tags ('[1, 2]') must be a JSON object of strings"),
    ({"tags": '{"owner": 5}'}, "tags", "tags ('{\"owner\": 5}') must be a JSON object of strings"),
    (
        {"tags": '{"environment": "prod"}'},
        "tags",
        "tags ('environment') must not set a tag the program owns",
    ),
    (
        {"tags": '{"a/b": "x"}'},
        "tags",
        "tags ('a/b') tag names must be 1-512 chars without <>%&\\?/",
    ),
    ({"deployCode": "no"}, "deployCode", "deployCode ('no') must be true or false"),
    ({"network": "vnet"}, "network", "network ('vnet') must be one of: public, private"),
    (
        {"zoneRedundant": "true", "location": "westus"},
        "zoneRedundant",
        "zoneRedundant (true) needs a region where Flex Consumption is zone redundant; location "
        "'westus' is not one of: " + ", ".join(FLEX_ZONE_REDUNDANT_REGIONS),
    ),
    (
        {"network": "private", "vnetAddressSpace": "10.60.0.1/23"},
        "vnetAddressSpace",
        "vnetAddressSpace ('10.60.0.1/23') must be an IPv4 network in CIDR form such as "
        "10.60.0.0/24",
    ),
    *(
        (
            {"network": "private", "vnetAddressSpace": space},
            "vnetAddressSpace",
            f"vnetAddressSpace ('{space}') must not be a loopback, link-local, multicast, "
            "reserved or unspecified range, nor hold Azure's platform address 168.63.129.16 (a "
            "VNet cannot use them)",
        )
        for space in (
            "127.0.0.0/23",
            "169.254.0.0/23",
            "224.0.0.0/23",
            "240.0.0.0/23",
            "0.1.0.0/23",
            "168.63.128.0/23",
        )
    ),
    (
        {"network": "private", "integrationSubnetPrefix": "10.60.0.0/28"},
        "integrationSubnetPrefix",
        "integrationSubnetPrefix ('10.60.0.0/28') must be a network from /8 to /27",
    ),
    (
        {"network": "private", "privateEndpointSubnetPrefix": "10.70.0.0/27"},
        "privateEndpointSubnetPrefix",
        "privateEndpointSubnetPrefix (10.70.0.0/27) must lie inside vnetAddressSpace "
        "(10.60.0.0/23)",
    ),
    (
        {"network": "private", "privateEndpointSubnetPrefix": "10.60.0.128/27"},
        "privateEndpointSubnetPrefix",
        "privateEndpointSubnetPrefix (10.60.0.128/27) must not overlap integrationSubnetPrefix "
        "(10.60.0.0/24)",
    ),
    (
        {"network": "private", "existingVnetId": SUBNET_ID},
        "existingVnetId",
        f"existingVnetId ({SUBNET_ID!r}) must be a Microsoft.Network/virtualNetworks resource id",
    ),
    (
        {"network": "private", "existingVnetId": VNET_ID},
        "existingIntegrationSubnetName",
        "existingIntegrationSubnetName is required with existingVnetId: name its subnet",
    ),
    (
        {
            "network": "private",
            "existingVnetId": VNET_ID,
            **SUBNETS,
            "existingPrivateEndpointSubnetName": "snet-a",
        },
        "existingPrivateEndpointSubnetName",
        "existingPrivateEndpointSubnetName ('snet-a') must differ from "
        "existingIntegrationSubnetName: the delegated subnet can hold nothing else",
    ),
    (
        {
            "network": "private",
            "existingVnetId": VNET_ID,
            **SUBNETS,
            "vnetAddressSpace": "10.1.0.0/16",
        },
        "vnetAddressSpace",
        "vnetAddressSpace ('10.1.0.0/16') describes a VNet the program creates; with "
        "existingVnetId the existing subnets are used",
    ),
    (
        {"network": "private", **SUBNETS},
        "existingIntegrationSubnetName",
        "existingIntegrationSubnetName ('snet-a') needs existingVnetId (its VNet)",
    ),
    (
        {"existingVnetId": VNET_ID, **SUBNETS},
        "existingVnetId",
        f"existingVnetId ({VNET_ID!r}) applies only to network: private (network is public)",
    ),
    (
        {
            "network": "private",
            "existingPrivateDnsZoneIds": '{"privatelink.file.core.windows.net": "x"}',
        },
        "existingPrivateDnsZoneIds",
        "existingPrivateDnsZoneIds ('privatelink.file.core.windows.net') must name one of the "
        "zones: privatelink.blob.core.windows.net, privatelink.queue.core.windows.net, "
        "privatelink.table.core.windows.net",
    ),
    (
        {"network": "private", "existingPrivateDnsZoneIds": json.dumps({BLOB_ZONE: QUEUE_ZONE_ID})},
        "existingPrivateDnsZoneIds",
        f"existingPrivateDnsZoneIds ({QUEUE_ZONE_ID!r}) must be the id of the "
        f"Microsoft.Network/privateDnsZones resource named {BLOB_ZONE}",
    ),
    (
        {"network": "private", "existingPrivateDnsZoneIds": json.dumps(HUB_ZONES)},
        "existingPrivateDnsZoneIds",
        "existingPrivateDnsZoneIds needs existingVnetId: existing zones are linked by their owner "
        "to its own VNets, so the VNet this program creates would never resolve them",
    ),
    (
        {
            "network": "private",
            "existingVnetId": VNET_ID,
            **SUBNETS,
            "existingPrivateDnsZoneIds": json.dumps({BLOB_ZONE: HUB_ZONES[BLOB_ZONE]}),
        },
        "existingPrivateDnsZoneIds",
        "existingPrivateDnsZoneIds (missing privatelink.queue.core.windows.net, "
        "privatelink.table.core.windows.net) must hold all of privatelink.blob.core.windows.net, "
        "privatelink.queue.core.windows.net, privatelink.table.core.windows.net or none: the "
        "stack reaches storage on all three",
    ),
    (
        {"apiAllowedIpRanges": '["198.51.100.0/33"]'},
        "apiAllowedIpRanges",
        "apiAllowedIpRanges ('198.51.100.0/33') must be an IP address or CIDR range",
    ),
    (
        {"apiAllowedIpRanges": '"198.51.100.0/24"'},
        "apiAllowedIpRanges",
        "apiAllowedIpRanges ('\"198.51.100.0/24\"') must be a JSON list of strings",
    ),
    (
        {"apiAllowedServiceTags": '["Azure Cloud"]'},
        "apiAllowedServiceTags",
        "apiAllowedServiceTags ('Azure Cloud') must be an Azure service tag such as AzureCloud",
    ),
    (
        {"apiAllowedIpRanges": '["198.51.100.0/24"]'},
        "apiAllowedServiceTags",
        "apiAllowedServiceTags ([]) must include AzureCloud when the API is restricted: ACS sends "
        "its callbacks from Azure's public cloud and publishes no service tag of its own",
    ),
    (
        {"apiAuth": "oauth"},
        "apiAuth",
        "apiAuth ('oauth') must be one of: functionKey, entraId, both",
    ),
    (
        {"apiAuth": "entraId", "apiAudience": "api://recordings"},
        "apiTenantId",
        "apiTenantId is required with apiAuth entraId",
    ),
    (
        {"apiAuth": "both", "apiTenantId": TENANT},
        "apiAudience",
        "apiAudience is required with apiAuth both",
    ),
    (
        {"apiAuth": "entraId", "apiTenantId": TENANT, "apiAudience": "api://recordings"},
        "apiAllowedClientIds",
        "apiAllowedClientIds or apiRequiredRole is required with apiAuth entraId: a tenant and "
        "an audience alone admit any application or user of the tenant that obtains a token",
    ),
    (
        {"apiTenantId": "contoso.onmicrosoft.com"},
        "apiTenantId",
        "apiTenantId ('contoso.onmicrosoft.com') must be a tenant id (a GUID)",
    ),
    (
        {"apiAuth": "entraId", "apiTenantId": TENANT, "apiAudience": "recordings-api"},
        "apiAudience",
        "apiAudience ('recordings-api') must be an application ID URI (api://... or https://...) "
        "or the API's client id (a GUID); separate two with a comma",
    ),
    (
        {"apiAuth": "entraId", "apiTenantId": TENANT, "apiAudience": "api://a,api://a"},
        "apiAudience",
        "apiAudience ('api://a,api://a') must hold 1-5 different audiences",
    ),
    (
        {"apiAllowedClientIds": '["backend"]'},
        "apiAllowedClientIds",
        "apiAllowedClientIds ('backend') must be a client application id (a GUID)",
    ),
    (
        {"apiAllowedClientIds": f'["{TENANT}", "{TENANT.upper()}"]'},
        "apiAllowedClientIds",
        f'apiAllowedClientIds (\'["{TENANT}", "{TENANT.upper()}"]\') must not list a client '
        "id twice",
    ),
    (
        {"apiRequiredRole": "Recordings Read"},
        "apiRequiredRole",
        "apiRequiredRole ('Recordings Read') must be an app role value: 1-120 characters, no "
        "spaces",
    ),
    (
        {"apiTenantId": TENANT},
        "apiTenantId",
        f"apiTenantId ('{TENANT}') applies only with apiAuth entraId or both (apiAuth is "
        "functionKey)",
    ),
    (
        {"apiRequiredRole": "Recordings.ReadWrite"},
        "apiRequiredRole",
        "apiRequiredRole ('Recordings.ReadWrite') applies only with apiAuth entraId or both "
        "(apiAuth is functionKey)",
    ),
    (
        {"coolAfterDay": "3"},
        "coolAfterDay",
        "coolAfterDay is not a known config key of acs-call-recording; known keys: "
        + ", ".join(f.key for f in CONFIG_FIELDS),
    ),
]


@pytest.mark.parametrize(
    ("raw", "key", "message"), RULES, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(RULES)]
)
def test_each_rule_names_key_value_and_rule(raw: dict[str, str], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "dev")
    assert caught.value.key == key
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_token_modes_list_every_missing_key_at_once() -> None:
    problems = config_problems({"apiAuth": "entraId"})
    assert [(p.key, str(p)) for p in problems] == [
        ("apiTenantId", "apiTenantId is required with apiAuth entraId"),
        ("apiAudience", "apiAudience is required with apiAuth entraId"),
        (
            "apiAllowedClientIds",
            "apiAllowedClientIds or apiRequiredRole is required with apiAuth entraId: a tenant "
            "and an audience alone admit any application or user of the tenant that obtains a "
            "token",
        ),
    ]


@pytest.mark.parametrize(
    "callers",
    [
        {"apiAllowedClientIds": f'["{TENANT}"]'},
        {"apiRequiredRole": "Recordings.ReadWrite"},
    ],
    ids=["client-ids", "role"],
)
def test_either_client_ids_or_a_role_names_the_callers(callers: dict[str, str]) -> None:
    raw = {"apiAuth": "both", "apiTenantId": TENANT, "apiAudience": "api://recordings"}
    assert config_problems({**raw, **callers}) == []
    assert [p.key for p in config_problems(raw)] == ["apiAllowedClientIds"]


def test_api_auth_values_are_normalised() -> None:
    cfg = parse_config(
        {
            "apiAuth": "ENTRAID",
            "apiTenantId": TENANT,
            "apiAudience": f" api://recordings , {TENANT} ",
            "apiAllowedClientIds": f'["{TENANT.upper()}"]',
            "apiRequiredRole": "Recordings.ReadWrite",
        },
        "dev",
    )
    assert (cfg.api_auth, cfg.requires_bearer_token) == ("entraId", True)
    assert cfg.api_audiences == ("api://recordings", TENANT)
    assert cfg.api_allowed_client_ids == [TENANT]
    assert parse_config({}, "dev").api_audiences == ()


def test_defaults_make_a_working_config() -> None:
    cfg = parse_config({}, "dev")
    tiers = (cfg.cool_after_days, cfg.cold_after_days, cfg.archive_after_days, cfg.retention_days)
    assert tiers == (30, 90, 180, 2555)
    assert cfg.immutability_days == 0 and cfg.lock_immutability is False
    assert cfg.retain_archive_on_destroy is True
    assert cfg.function_instance_memory_mb in (512, 2048, 4096)
    assert cfg.resource_tags == {"app": PROJECT, "environment": "dev", "managed-by": "pulumi"}


def test_values_are_typed_and_normalised() -> None:
    cfg = parse_config(
        {"dataLocation": "united states", "lockImmutability": "TRUE", "immutabilityDays": "30",
         "tags": '{"team": "voice"}', "alertEmail": " ops@example.com "},
        "prod",
    )  # fmt: skip
    assert cfg.data_location == "United States"
    assert cfg.lock_immutability is True and cfg.immutability_days == 30
    assert cfg.alert_email == "ops@example.com"
    assert cfg.resource_tags == {
        "team": "voice",
        "app": PROJECT,
        "environment": "prod",
        "managed-by": "pulumi",
    }


def _as_config_text(value: object) -> str:
    """How `pulumi config` hands a YAML value to the program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def test_every_field_documents_its_type_rule_and_description_and_its_default_passes() -> None:
    for field in CONFIG_FIELDS:
        assert field.type_name in {"string", "int", "bool", "object", "list"}, field.key
        assert field.rule and field.description, field.key
        assert field.parse(field.key, _as_config_text(field.default)) == field.default, field.key


def test_stack_config_goes_through_the_same_validation() -> None:
    with pytest.raises(ConfigError, match=r"^dataLocation \('Atlantis'\) must be one of"):
        run_program({"dataLocation": "Atlantis"})


def _stack_file(stack: str) -> dict[str, str]:
    values = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{PROJECT}:"
    return {
        key.removeprefix(prefix): _as_config_text(value)
        for key, value in values.items()
        if key.startswith(prefix)
    }


def test_dev_stack_file_sets_every_key_with_a_valid_value() -> None:
    raw = _stack_file("dev")
    assert set(raw) == {f.key for f in CONFIG_FIELDS}
    assert parse_config(raw, "dev").stack == "dev"


def test_private_stack_file_is_a_valid_private_zone_redundant_stack() -> None:
    cfg = parse_config(_stack_file("private"), "private")
    assert cfg.private and cfg.zone_redundant
    assert cfg.api_allowed_service_tags == ["AzureCloud"]


def test_valid_network_values_are_kept() -> None:
    cfg = parse_config(
        {"network": "PRIVATE", "existingVnetId": VNET_ID, **SUBNETS,
         "existingPrivateDnsZoneIds": json.dumps(HUB_ZONES),
         "apiAllowedIpRanges": '["198.51.100.7", "2001:db8::/48"]',
         "apiAllowedServiceTags": '["AzureCloud", "AzureCloud.WestEurope"]'},
        "dev",
    )  # fmt: skip
    assert cfg.network == "private" and cfg.existing_vnet_id == VNET_ID
    assert cfg.existing_private_dns_zone_ids == HUB_ZONES
    assert cfg.api_allowed_ip_ranges == ["198.51.100.7", "2001:db8::/48"]
