"""``network: private``: every resource of the private topology, the storage firewalls, the
VNet-integrated app, the existing-VNet and existing-DNS-zone variants, zone redundancy and the
inbound allow-list; and the public stack without any of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.infra.harness import ProgramRun, run_program
from tests.infra.mocks import SUBSCRIPTION_ID
from tests.infra.queries import STORAGE_ACCOUNT, of_type, one
from tests.infra.test_program import EXPECTED_COUNTS, _unknowns

VNET = "azure-native:network:VirtualNetwork"
SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PUBLIC_IP = "azure-native:network:PublicIPAddress"
NAT = "azure-native:network:NatGateway"
ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
ZONE = "azure-native:privatedns:PrivateZone"
LINK = "azure-native:privatedns:VirtualNetworkLink"
WEB_APP = "azure-native:web:WebApp"
PLAN = "azure-native:web:AppServicePlan"
NETWORK_TYPES = (VNET, SUBNET, NSG, PUBLIC_IP, NAT, ENDPOINT, ZONE_GROUP, ZONE, LINK)

PRIVATE_EXTRA = {
    "acsrec:index:RecordingNetwork": 1,
    VNET: 1,
    SUBNET: 2,
    NSG: 1,
    PUBLIC_IP: 1,
    NAT: 1,
    ENDPOINT: 6,
    ZONE_GROUP: 6,
    ZONE: 3,
    LINK: 3,
}
ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "queue": "privatelink.queue.core.windows.net",
    "table": "privatelink.table.core.windows.net",
}
EXISTING_VNET = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-spoke-telephony"
    "/providers/Microsoft.Network/virtualNetworks/vnet-spoke"
)
HUB_ZONES = {
    zone: f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-hub-dns"
    f"/providers/Microsoft.Network/privateDnsZones/{zone}"
    for zone in ZONES.values()
}
EXISTING_SPOKE = {
    "network": "private",
    "existingVnetId": EXISTING_VNET,
    "existingIntegrationSubnetName": "snet-functions",
    "existingPrivateEndpointSubnetName": "snet-endpoints",
}


def _counts(registrations: list) -> Counter:
    return Counter(r.type_ for r in registrations)


def _by_name(registrations: list, type_: str) -> dict[str, Any]:
    return {r.name: r for r in of_type(registrations, type_)}


def _account(registrations: list, logical: str) -> Any:
    return one(registrations, STORAGE_ACCOUNT, logical)


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_private_stack_adds_exactly_the_network(preview: bool, private_run: ProgramRun) -> None:
    regs = (
        run_program({"network": "private"}, preview=True) if preview else private_run.registrations
    )
    assert _counts(regs) == Counter(EXPECTED_COUNTS) + Counter(PRIVATE_EXTRA)
    assert [f"{r.name}{p}" for r in regs for p in _unknowns(r.inputs)] == []


def test_public_stack_has_no_network_and_open_storage(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    assert [r.name for r in regs if r.type_ in NETWORK_TYPES] == []
    for account in of_type(regs, STORAGE_ACCOUNT):
        assert account.inputs["publicNetworkAccess"] == "Enabled", account.name
        assert "networkRuleSet" not in account.inputs, account.name
    app = one(regs, WEB_APP).inputs
    assert "virtualNetworkSubnetId" not in app
    assert "ipSecurityRestrictions" not in app["siteConfig"]
    assert "zoneRedundant" not in one(regs, PLAN).inputs
    assert default_run.outputs["NETWORK_MODE"] == "public"


def test_network_component_parents_its_resources(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    component = one(regs, "acsrec:index:RecordingNetwork")
    assert component.parent == one(regs, "acsrec:index:CallRecording").urn
    children = [r for r in regs if r.type_ in NETWORK_TYPES]
    assert {r.parent for r in children} == {component.urn}
    assert all(r.name.startswith("acsrec-net-") for r in children)
    assert private_run.outputs["NETWORK_MODE"] == "private"


def test_vnet_and_subnets(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    vnet = one(regs, VNET)
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.60.0.0/23"]}
    subnets = _by_name(regs, SUBNET)
    integration = subnets["acsrec-net-functions-integration"].inputs
    endpoints = subnets["acsrec-net-private-endpoints"].inputs
    nsg_id = one(regs, NSG).outputs["id"]
    for subnet in (integration, endpoints):
        assert subnet["virtualNetworkName"] == vnet.outputs["name"]
        assert subnet["defaultOutboundAccess"] is False
        assert subnet["networkSecurityGroup"] == {"id": nsg_id}
    # Flex Consumption's delegation, on a subnet used by nothing else.
    assert integration["addressPrefix"] == "10.60.0.0/24"
    assert integration["delegations"] == [
        {"name": "flex-consumption", "serviceName": "Microsoft.App/environments"}
    ]
    assert endpoints["addressPrefix"] == "10.60.1.0/27"
    assert "delegations" not in endpoints
    assert endpoints["privateEndpointNetworkPolicies"] == "Enabled"
    # One subnet write at a time on a VNet.
    assert subnets["acsrec-net-functions-integration"].urn in (
        subnets["acsrec-net-private-endpoints"].depends_on
    )


def test_egress_goes_through_a_nat_gateway(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    public_ip = one(regs, PUBLIC_IP)
    nat = one(regs, NAT)
    assert public_ip.inputs["sku"] == {"name": "Standard", "tier": "Regional"}
    assert public_ip.inputs["publicIPAllocationMethod"] == "Static"
    assert public_ip.inputs["publicIPAddressVersion"] == "IPv4"
    assert nat.inputs["sku"] == {"name": "Standard"}
    assert nat.inputs["publicIpAddresses"] == [{"id": public_ip.outputs["id"]}]
    integration = one(regs, SUBNET, "acsrec-net-functions-integration").inputs
    assert integration["natGateway"] == {"id": nat.outputs["id"]}
    assert "natGateway" not in one(regs, SUBNET, "acsrec-net-private-endpoints").inputs


def test_one_private_endpoint_per_sub_resource(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    subnet_id = one(regs, SUBNET, "acsrec-net-private-endpoints").outputs["id"]
    archive_id = _account(regs, "acsrecarch").outputs["id"]
    ingress_id = _account(regs, "acsrecingr").outputs["id"]
    runtime_id = _account(regs, "acsrechost").outputs["id"]
    seen = set()
    for endpoint in of_type(regs, ENDPOINT):
        assert endpoint.inputs["subnet"] == {"id": subnet_id}
        [connection] = endpoint.inputs["privateLinkServiceConnections"]
        [group_id] = connection["groupIds"]
        seen.add((connection["privateLinkServiceId"], group_id))
    assert seen == {
        (archive_id, "blob"),
        (archive_id, "table"),
        (ingress_id, "blob"),
        (ingress_id, "queue"),
        (runtime_id, "blob"),
        (runtime_id, "table"),
    }


def test_each_endpoint_registers_in_its_zone_linked_to_the_vnet(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    zones = {r.inputs["privateZoneName"]: r for r in of_type(regs, ZONE)}
    assert set(zones) == set(ZONES.values())
    assert {z.inputs["location"] for z in zones.values()} == {"global"}
    vnet_id = one(regs, VNET).outputs["id"]
    links = {r.inputs["privateZoneName"]: r.inputs for r in of_type(regs, LINK)}
    assert set(links) == set(ZONES.values())
    for link in links.values():
        assert link["virtualNetwork"] == {"id": vnet_id}
        assert link["registrationEnabled"] is False
    endpoints = {r.outputs["name"]: r for r in of_type(regs, ENDPOINT)}
    for group in of_type(regs, ZONE_GROUP):
        endpoint = endpoints[group.inputs["privateEndpointName"]]
        [group_id] = endpoint.inputs["privateLinkServiceConnections"][0]["groupIds"]
        assert group.inputs["privateDnsZoneConfigs"] == [
            {"name": group_id, "privateDnsZoneId": zones[ZONES[group_id]].outputs["id"]}
        ]
    assert len(of_type(regs, ZONE_GROUP)) == len(endpoints)


def test_storage_firewalls(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    archive = _account(regs, "acsrecarch").inputs
    ingress = _account(regs, "acsrecingr").inputs
    runtime = _account(regs, "acsrechost").inputs
    # Event Grid delivers to the events queue and dead-letters into the ingress account as a
    # trusted service; nothing else reaches its public endpoint.
    assert ingress["publicNetworkAccess"] == "Enabled"
    assert ingress["networkRuleSet"] == {
        "defaultAction": "Deny",
        "bypass": "AzureServices",
        "ipRules": [],
        "virtualNetworkRules": [],
    }
    # The media, the registry and the host's state: private endpoints only.
    for account in (archive, runtime):
        assert account["publicNetworkAccess"] == "Disabled"
        assert account["networkRuleSet"] == {
            "defaultAction": "Deny",
            "bypass": "None",
            "ipRules": [],
            "virtualNetworkRules": [],
        }
    assert archive["sku"] == {"name": "Standard_GRS"}


def test_app_is_integrated_and_starts_after_the_dns_records(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    app = one(regs, WEB_APP)
    integration = one(regs, SUBNET, "acsrec-net-functions-integration")
    assert app.inputs["virtualNetworkSubnetId"] == integration.outputs["id"]
    site = app.inputs["siteConfig"]
    # Flex refuses vnetRouteAllEnabled (51021) and has no platform health check.
    assert "vnetRouteAllEnabled" not in site
    assert "healthCheckPath" not in site
    waits_for = {r.urn for r in regs if r.type_ in (ZONE_GROUP, LINK)}
    assert len(waits_for) == 9  # 6 zone groups, 3 zone links
    assert waits_for <= set(app.depends_on)
    code = one(regs, "pulumi-python:dynamic:Resource", "acsrec-code")
    assert app.urn in code.depends_on


def test_events_target_the_ingress_account(private_run: ProgramRun) -> None:
    regs = private_run.registrations
    subscription = one(regs, "azure-native:eventgrid:SystemTopicEventSubscription").inputs
    ingress_id = _account(regs, "acsrecingr").outputs["id"]
    destination = subscription["deliveryWithResourceIdentity"]["destination"]
    dead_letter = subscription["deadLetterWithResourceIdentity"]["deadLetterDestination"]
    assert destination["resourceId"] == ingress_id
    assert dead_letter["resourceId"] == ingress_id
    # Trusted-service access works only with the topic's system-assigned identity.
    assert subscription["deliveryWithResourceIdentity"]["identity"] == {"type": "SystemAssigned"}


def test_existing_vnet_is_used_as_it_is() -> None:
    regs = run_program(EXISTING_SPOKE)
    created = _counts(regs)
    for type_ in (VNET, SUBNET, NSG, PUBLIC_IP, NAT):
        assert created[type_] == 0, type_
    assert (created[ENDPOINT], created[ZONE], created[LINK]) == (6, 3, 3)
    app = one(regs, WEB_APP).inputs
    assert app["virtualNetworkSubnetId"] == f"{EXISTING_VNET}/subnets/snet-functions"
    subnets = {r.inputs["subnet"]["id"] for r in of_type(regs, ENDPOINT)}
    assert subnets == {f"{EXISTING_VNET}/subnets/snet-endpoints"}
    assert {r.inputs["virtualNetwork"]["id"] for r in of_type(regs, LINK)} == {EXISTING_VNET}


def test_existing_dns_zones_are_used_without_a_zone_or_link_of_ours() -> None:
    """The landing zone's hub zones, linked by the hub to its spokes: the program only registers
    each endpoint's A record in them."""
    regs = run_program({**EXISTING_SPOKE, "existingPrivateDnsZoneIds": HUB_ZONES})
    assert of_type(regs, ZONE) == []
    assert of_type(regs, LINK) == []
    registered = Counter(
        (config["name"], config["privateDnsZoneId"])
        for group in of_type(regs, ZONE_GROUP)
        for config in group.inputs["privateDnsZoneConfigs"]
    )
    assert registered == {
        ("blob", HUB_ZONES[ZONES["blob"]]): 3,
        ("queue", HUB_ZONES[ZONES["queue"]]): 1,
        ("table", HUB_ZONES[ZONES["table"]]): 2,
    }


def test_zone_redundancy_covers_the_plan_and_runtime_storage_not_the_archive() -> None:
    regs = run_program({"zoneRedundant": True, "location": "swedencentral"})
    assert one(regs, PLAN).inputs["zoneRedundant"] is True
    assert _account(regs, "acsrechost").inputs["sku"] == {"name": "Standard_ZRS"}
    # ZRS has no Archive tier: the archive keeps geo-redundant storage.
    assert _account(regs, "acsrecarch").inputs["sku"] == {"name": "Standard_GRS"}


def test_inbound_allow_list_restricts_the_api_but_not_the_scm_site() -> None:
    regs = run_program(
        {"apiAllowedIpRanges": ["198.51.100.0/24"], "apiAllowedServiceTags": ["AzureCloud"]}
    )
    site = one(regs, WEB_APP).inputs["siteConfig"]
    assert site["ipSecurityRestrictions"] == [
        {
            "name": "allow-0",
            "action": "Allow",
            "priority": 100,
            "ipAddress": "198.51.100.0/24",
            "tag": "Default",
        },
        {
            "name": "allow-1",
            "action": "Allow",
            "priority": 101,
            "ipAddress": "AzureCloud",
            "tag": "ServiceTag",
        },
    ]
    assert site["scmIpSecurityRestrictionsUseMain"] is False
    assert "scmIpSecurityRestrictions" not in site
