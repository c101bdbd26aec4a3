"""The private network of ``network: private``: where the Function App runs and how it reaches
its storage without the storage accounts' public endpoints.

Microsoft's Flex Consumption VNet samples (functions-quickstart-python-http-azd,
infra/app/vnet.bicep and storage-PrivateEndpoint.bicep) are the model, tightened:

- one subnet delegated to ``Microsoft.App/environments`` for the app's VNet integration (the
  delegation Flex Consumption requires; "Azure Functions Flex Consumption plan hosting",
  Considerations), used by nothing else, as "Azure Functions networking options" asks;
- one subnet for the private endpoints, one endpoint per storage sub-resource the app or the
  Functions host uses, each registered in the matching ``privatelink.*`` private DNS zone;
- a NAT gateway with a Standard public IP on the integration subnet: Flex Consumption routes
  the app's outbound traffic into the VNet (it has no route-all switch; ARM refuses
  ``vnetRouteAllEnabled`` for Flex sites), and subnets get no default outbound internet access
  ("Default outbound access in Azure"), while ACS Call Automation, the ACS media hosts, Entra ID
  and Application Insights are public endpoints;
- both subnets with ``defaultOutboundAccess: false`` and a network security group.

With ``existingVnetId`` the landing zone owns the VNet, its subnets and their egress (typically
a hub firewall): the program creates only the endpoints and, unless existing zones are given,
the DNS zones linked to that VNet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import network, privatedns

from infra.config import STORAGE_PRIVATE_DNS_ZONES

#: Delegation Flex Consumption needs on its integration subnet (not Microsoft.Web/serverFarms).
FLEX_SUBNET_DELEGATION = "Microsoft.App/environments"
INTEGRATION_SUBNET = "functions-integration"
PRIVATE_ENDPOINT_SUBNET = "private-endpoints"
ENDPOINT_POLICIES_ON = network.VirtualNetworkPrivateEndpointNetworkPolicies.ENABLED


@dataclass(frozen=True)
class EndpointTarget:
    """A storage account and the sub-resources (``blob``, ``queue``, ``table``) to reach."""

    label: str
    """Required. Short name used in the endpoint names (``archive``, ``runtime``)."""
    account_id: pulumi.Input[str]
    """Required. ARM id of the storage account (the endpoint's private link service)."""
    sub_resources: tuple[str, ...]
    """Required. Group ids, each one a private endpoint."""


@dataclass
class NetworkArgs:
    """Inputs of :class:`RecordingNetwork`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group of everything the component creates."""
    location: str
    """Required. Region; the VNet, the app and the endpoints must share it."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    endpoints: Sequence[EndpointTarget]
    """Required. Storage accounts and sub-resources that get a private endpoint."""
    vnet_address_space: str = "10.60.0.0/23"
    """Optional. Address space of the VNet the component creates."""
    integration_subnet_prefix: str = "10.60.0.0/24"
    """Optional. Prefix of the subnet delegated to Flex Consumption."""
    private_endpoint_subnet_prefix: str = "10.60.1.0/27"
    """Optional. Prefix of the private endpoint subnet."""
    existing_vnet_id: str = ""
    """Optional. Use this VNet instead of creating one (then the two names below are required)."""
    existing_integration_subnet_name: str = ""
    """Conditional. Delegated subnet of ``existing_vnet_id``."""
    existing_private_endpoint_subnet_name: str = ""
    """Conditional. Private endpoint subnet of ``existing_vnet_id``."""
    existing_private_dns_zone_ids: Mapping[str, str] = field(default_factory=dict)
    """Optional. Zone name to zone id; these zones are used as they are (linking is the owner's
    job), the others are created and linked to the VNet."""


class RecordingNetwork(pulumi.ComponentResource):
    """VNet (or an existing one), subnets, NAT egress, storage private endpoints and their DNS."""

    vnet_id: pulumi.Output[str]
    integration_subnet_id: pulumi.Output[str]
    private_endpoint_subnet_id: pulumi.Output[str]
    private_endpoints: dict[str, network.PrivateEndpoint]
    """``<label>-<sub-resource>`` to its endpoint."""
    ready: list[pulumi.Resource]
    """What must exist before anything resolves storage names from the VNet: the DNS zone
    groups (A records) and the zone links."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingNetwork", name, None, opts)
        self._name = name
        self._args = args
        if args.existing_vnet_id:
            self.vnet_id = pulumi.Output.from_input(args.existing_vnet_id)
            self.integration_subnet_id = pulumi.Output.from_input(
                f"{args.existing_vnet_id}/subnets/{args.existing_integration_subnet_name}"
            )
            self.private_endpoint_subnet_id = pulumi.Output.from_input(
                f"{args.existing_vnet_id}/subnets/{args.existing_private_endpoint_subnet_name}"
            )
        else:
            self._create_vnet()
        zone_ids, links = self._dns_zones()
        self.private_endpoints = {}
        groups: list[pulumi.Resource] = []
        for target in args.endpoints:
            for sub_resource in target.sub_resources:
                endpoint, group = self._endpoint(target, sub_resource, zone_ids[sub_resource])
                self.private_endpoints[f"{target.label}-{sub_resource}"] = endpoint
                groups.append(group)
        self.ready = [*groups, *links]
        # register_outputs last: the component is complete once every endpoint is registered.
        self.register_outputs(
            {
                "vnet_id": self.vnet_id,
                "integration_subnet_id": self.integration_subnet_id,
                "private_endpoint_subnet_id": self.private_endpoint_subnet_id,
            }
        )

    def _child(self, **options: object) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)  # type: ignore[arg-type]

    def _create_vnet(self) -> None:
        name, args = self._name, self._args
        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space={"address_prefixes": [args.vnet_address_space]},
            tags=args.tags,
            # The subnets are resources of their own; the VNet must not claim (and so remove)
            # them on its next update.
            opts=self._child(ignore_changes=["subnets"]),
        )
        nsg = network.NetworkSecurityGroup(
            f"{name}-nsg",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            opts=self._child(),
        )
        public_ip = network.PublicIPAddress(
            f"{name}-egress-ip",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={
                "name": network.PublicIPAddressSkuName.STANDARD,
                "tier": network.PublicIPAddressSkuTier.REGIONAL,
            },
            public_ip_allocation_method=network.IPAllocationMethod.STATIC,
            public_ip_address_version=network.IPVersion.I_PV4,
            tags=args.tags,
            opts=self._child(),
        )
        nat = network.NatGateway(
            f"{name}-nat",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": network.NatGatewaySkuName.STANDARD},
            public_ip_addresses=[{"id": public_ip.id}],
            tags=args.tags,
            opts=self._child(),
        )

        def subnet(
            name_: str, prefix: str, opts: pulumi.ResourceOptions, **extra: Any
        ) -> network.Subnet:
            return network.Subnet(
                f"{name}-{name_}",
                resource_group_name=args.resource_group_name,
                virtual_network_name=vnet.name,
                subnet_name=name_,
                address_prefix=prefix,
                network_security_group={"id": nsg.id},
                default_outbound_access=False,
                opts=opts,
                **extra,
            )

        integration = subnet(
            INTEGRATION_SUBNET,
            args.integration_subnet_prefix,
            self._child(),
            delegations=[{"name": "flex-consumption", "service_name": FLEX_SUBNET_DELEGATION}],
            nat_gateway={"id": nat.id},
        )
        endpoints = subnet(
            PRIVATE_ENDPOINT_SUBNET,
            args.private_endpoint_subnet_prefix,
            # Subnets of one VNet are written one at a time (ARM answers
            # AnotherOperationInProgress to a second concurrent write).
            self._child(depends_on=[integration]),
            # The NSG (and route tables) apply to the endpoints' traffic too.
            private_endpoint_network_policies=ENDPOINT_POLICIES_ON,
        )
        self.vnet_id = vnet.id
        self.integration_subnet_id = integration.id
        self.private_endpoint_subnet_id = endpoints.id

    def _dns_zones(self) -> tuple[dict[str, pulumi.Input[str]], list[pulumi.Resource]]:
        """Zone id per sub-resource: an existing zone as given, else a new one on the VNet."""
        name, args = self._name, self._args
        wanted = sorted({sub for target in args.endpoints for sub in target.sub_resources})
        zone_ids: dict[str, pulumi.Input[str]] = {}
        links: list[pulumi.Resource] = []
        for sub_resource in wanted:
            zone_name = STORAGE_PRIVATE_DNS_ZONES[sub_resource]
            existing = args.existing_private_dns_zone_ids.get(zone_name)
            if existing:
                zone_ids[sub_resource] = existing
                continue
            zone = privatedns.PrivateZone(
                f"{name}-{sub_resource}-zone",
                resource_group_name=args.resource_group_name,
                private_zone_name=zone_name,
                location="global",
                tags=args.tags,
                opts=self._child(),
            )
            links.append(
                privatedns.VirtualNetworkLink(
                    f"{name}-{sub_resource}-link",
                    resource_group_name=args.resource_group_name,
                    private_zone_name=zone.name,
                    location="global",
                    virtual_network={"id": self.vnet_id},
                    # Only the endpoints' A records live here; VMs do not register themselves.
                    registration_enabled=False,
                    tags=args.tags,
                    opts=self._child(),
                )
            )
            zone_ids[sub_resource] = zone.id
        return zone_ids, links

    def _endpoint(
        self, target: EndpointTarget, sub_resource: str, zone_id: pulumi.Input[str]
    ) -> tuple[network.PrivateEndpoint, network.PrivateDnsZoneGroup]:
        name, args = self._name, self._args
        label = f"{name}-{target.label}-{sub_resource}"
        endpoint = network.PrivateEndpoint(
            f"{label}-pe",
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet={"id": self.private_endpoint_subnet_id},
            private_link_service_connections=[
                {
                    "name": f"{target.label}-{sub_resource}",
                    "private_link_service_id": target.account_id,
                    "group_ids": [sub_resource],
                }
            ],
            tags=args.tags,
            opts=self._child(),
        )
        # The zone group writes (and on deletion removes) the endpoint's A record in the zone.
        group = network.PrivateDnsZoneGroup(
            f"{label}-dns",
            resource_group_name=args.resource_group_name,
            private_endpoint_name=endpoint.name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[{"name": sub_resource, "private_dns_zone_id": zone_id}],
            opts=self._child(),
        )
        return endpoint, group
