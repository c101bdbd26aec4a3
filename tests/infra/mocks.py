"""Pulumi runtime mocks for the acs-call-recording program.

The mock answers every registration with the provider-computed outputs the program reads
(names, ids shaped like ARM ids, endpoints, identities), because a missing output silently drops
the inputs that depend on it. Invokes are not expected at all: any invoke raises, so a new data
lookup in the program cannot slip past the tests with a ``None``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000c0de"
TENANT_ID = "11111111-2222-3333-4444-555555555555"

#: Input property that carries a resource's Azure name, per type token.
NAME_INPUT = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobServiceProperties": "blobServicesName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:Queue": "queueName",
    "azure-native:storage:Table": "tableName",
    "azure-native:storage:ManagementPolicy": "managementPolicyName",
    "azure-native:storage:BlobContainerImmutabilityPolicy": "immutabilityPolicyName",
    "azure-native:communication:CommunicationService": "communicationServiceName",
    "azure-native:web:AppServicePlan": "name",
    "azure-native:web:WebApp": "name",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:eventgrid:SystemTopic": "systemTopicName",
    "azure-native:eventgrid:SystemTopicEventSubscription": "eventSubscriptionName",
    "azure-native:eventgrid:Topic": "topicName",
    "azure-native:monitor:ActionGroup": "actionGroupName",
    "azure-native:monitor:MetricAlert": "ruleName",
    "azure-native:monitor:ScheduledQueryRule": "ruleName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:authorization:RoleDefinition": "roleDefinitionId",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:NetworkSecurityGroup": "networkSecurityGroupName",
    "azure-native:network:PublicIPAddress": "publicIpAddressName",
    "azure-native:network:NatGateway": "natGatewayName",
    "azure-native:network:PrivateEndpoint": "privateEndpointName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
}
#: ARM provider path of top-level resources in a resource group.
ARM_TYPE = {
    "azure-native:storage:StorageAccount": "Microsoft.Storage/storageAccounts",
    "azure-native:communication:CommunicationService": (
        "Microsoft.Communication/communicationServices"
    ),
    "azure-native:web:AppServicePlan": "Microsoft.Web/serverfarms",
    "azure-native:web:WebApp": "Microsoft.Web/sites",
    "azure-native:operationalinsights:Workspace": "Microsoft.OperationalInsights/workspaces",
    "azure-native:applicationinsights:Component": "Microsoft.Insights/components",
    "azure-native:eventgrid:SystemTopic": "Microsoft.EventGrid/systemTopics",
    "azure-native:eventgrid:Topic": "Microsoft.EventGrid/topics",
    "azure-native:monitor:ActionGroup": "Microsoft.Insights/actionGroups",
    "azure-native:monitor:MetricAlert": "Microsoft.Insights/metricAlerts",
    "azure-native:monitor:ScheduledQueryRule": "Microsoft.Insights/scheduledQueryRules",
    "azure-native:network:VirtualNetwork": "Microsoft.Network/virtualNetworks",
    "azure-native:network:NetworkSecurityGroup": "Microsoft.Network/networkSecurityGroups",
    "azure-native:network:PublicIPAddress": "Microsoft.Network/publicIPAddresses",
    "azure-native:network:NatGateway": "Microsoft.Network/natGateways",
    "azure-native:network:PrivateEndpoint": "Microsoft.Network/privateEndpoints",
    "azure-native:privatedns:PrivateZone": "Microsoft.Network/privateDnsZones",
}
#: Children of a network resource: type -> (parent ARM type, input naming the parent, segment).
NETWORK_CHILD = {
    "azure-native:network:Subnet": (
        "Microsoft.Network/virtualNetworks",
        "virtualNetworkName",
        "subnets",
    ),
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints",
        "privateEndpointName",
        "privateDnsZoneGroups",
    ),
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones",
        "privateZoneName",
        "virtualNetworkLinks",
    ),
}
#: Storage children: (service segment, collection segment).
STORAGE_CHILD = {
    "azure-native:storage:BlobServiceProperties": ("blobServices", None),
    "azure-native:storage:BlobContainer": ("blobServices/default", "containers"),
    "azure-native:storage:Queue": ("queueServices/default", "queues"),
    "azure-native:storage:Table": ("tableServices/default", "tables"),
    "azure-native:storage:ManagementPolicy": ("managementPolicies", None),
}
#: Types that have no Azure resource (components, dynamic resources).
NON_ARM_PREFIXES = ("acsrec:", "pulumi-python:dynamic:")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def auto_name(type_: str, logical: str) -> str:
    """What azure-native's autonaming would produce: the logical name plus a random suffix."""
    suffix = hashlib.sha256(logical.encode()).hexdigest()[:8]
    if type_ == "azure-native:storage:StorageAccount":
        return f"{logical}{suffix}".lower()
    if type_ == "azure-native:authorization:RoleAssignment":
        return stable_uuid("role", logical)
    return f"{logical}{suffix}"


def arm_id(type_: str, name: str, inputs: dict[str, Any]) -> str:
    group = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{inputs.get('resourceGroupName')}"
    if type_ == "azure-native:resources:ResourceGroup":
        return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{name}"
    if type_ in ARM_TYPE:
        return f"{group}/providers/{ARM_TYPE[type_]}/{name}"
    if type_ in STORAGE_CHILD:
        service, collection = STORAGE_CHILD[type_]
        account = f"{group}/providers/Microsoft.Storage/storageAccounts/{inputs['accountName']}"
        return (
            f"{account}/{service}/{collection}/{name}"
            if collection
            else f"{account}/{service}/{name}"
        )
    if type_ in NETWORK_CHILD:
        parent_type, parent_input, segment = NETWORK_CHILD[type_]
        return f"{group}/providers/{parent_type}/{inputs[parent_input]}/{segment}/{name}"
    if type_ == "azure-native:storage:BlobContainerImmutabilityPolicy":
        return (
            f"{group}/providers/Microsoft.Storage/storageAccounts/{inputs['accountName']}"
            f"/blobServices/default/containers/{inputs['containerName']}/immutabilityPolicies/{name}"
        )
    if type_ == "azure-native:authorization:RoleAssignment":
        return f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}"
    if type_ == "azure-native:authorization:RoleDefinition":
        # ARM keeps custom role definitions under the subscription, whatever scope created them.
        subscription = "/".join(str(inputs["scope"]).split("/")[:3])
        return f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{name}"
    if type_ == "azure-native:monitor:DiagnosticSetting":
        return f"{inputs['resourceUri']}/providers/Microsoft.Insights/diagnosticSettings/{name}"
    if type_ == "azure-native:eventgrid:SystemTopicEventSubscription":
        topic = f"{group}/providers/Microsoft.EventGrid/systemTopics/{inputs['systemTopicName']}"
        return f"{topic}/eventSubscriptions/{name}"
    if type_ in ("azure-native:web:WebAppFtpAllowed", "azure-native:web:WebAppScmAllowed"):
        kind = "ftp" if type_.endswith("FtpAllowed") else "scm"
        return (
            f"{group}/providers/Microsoft.Web/sites/{inputs['name']}"
            f"/basicPublishingCredentialsPolicies/{kind}"
        )
    raise NotImplementedError(f"the mock has no ARM id shape for {type_}: add one")


def _identity(inputs: dict[str, Any], owner: str) -> dict[str, Any]:
    return {
        **(inputs.get("identity") or {}),
        "principalId": stable_uuid("principal", owner),
        "tenantId": TENANT_ID,
    }


def computed_outputs(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Provider-computed outputs the program reads, per type token."""
    if type_ == "azure-native:storage:StorageAccount":
        return {
            "primaryEndpoints": {
                service: f"https://{name}.{service}.core.windows.net/"
                for service in ("blob", "queue", "table", "file", "dfs", "web")
            }
        }
    if type_ == "azure-native:communication:CommunicationService":
        return {
            "hostName": f"{name}.europe.communication.azure.com",
            "immutableResourceId": stable_uuid("acs-immutable", name),
            "identity": _identity(inputs, name),
        }
    if type_ == "azure-native:web:WebApp":
        return {
            "defaultHostName": f"{name}.azurewebsites.net",
            "enabledHostNames": [f"{name}.azurewebsites.net", f"{name}.scm.azurewebsites.net"],
            "identity": _identity(inputs, name),
        }
    if type_ == "azure-native:eventgrid:SystemTopic":
        return {"identity": _identity(inputs, name), "metricResourceId": stable_uuid("topic", name)}
    if type_ == "azure-native:eventgrid:Topic":
        # The publish URL ARM reports (``properties.endpoint``): region-numbered host, fixed path.
        return {
            "identity": _identity(inputs, name),
            "endpoint": f"https://{name.lower()}.westeurope-1.eventgrid.azure.net/api/events",
            "metricResourceId": stable_uuid("topic", name),
        }
    if type_ == "azure-native:applicationinsights:Component":
        key = stable_uuid("ikey", name)
        return {
            "instrumentationKey": key,
            "connectionString": (
                f"InstrumentationKey={key};"
                "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
            ),
            "appId": stable_uuid("appid", name),
        }
    if type_ == "azure-native:storage:BlobContainerImmutabilityPolicy":
        return {"etag": f'"{stable_uuid("etag", name)}"', "state": "Unlocked"}
    if type_ == "azure-native:operationalinsights:Workspace":
        return {"customerId": stable_uuid("workspace", name)}
    if type_ == "azure-native:network:PublicIPAddress":
        # An address from the documentation range (RFC 5737), never a real one.
        return {
            "ipAddress": f"203.0.113.{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 254 + 1}"
        }
    return {}


@dataclass
class Registration:
    """One resource registration as the engine (and CrossGuard) sees it."""

    type_: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""
    custom: bool = True
    parent: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


class AzureMocks(pulumi.runtime.Mocks):
    """Fills computed outputs for every resource; refuses every invoke."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        if not args.custom or args.typ.startswith(NON_ARM_PREFIXES):
            if args.typ.startswith("pulumi-python:dynamic:") and "grant_ids" in inputs:
                return f"wait-{len(inputs['grant_ids'])}-grants", inputs
            if args.typ.startswith("pulumi-python:dynamic:"):
                return f"{inputs.get('app_name')}:{str(inputs.get('package_sha256'))[:16]}", inputs
            return None, inputs
        name_key = NAME_INPUT.get(args.typ)
        name = inputs.get(name_key) if name_key else None
        name = name or auto_name(args.typ, args.name)
        state = {**inputs, "name": name, **computed_outputs(args.typ, name, inputs)}
        if name_key:
            state.setdefault(name_key, name)
        return arm_id(args.typ, name, inputs), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        raise NotImplementedError(
            f"un-mocked invoke {args.token}({args.args}): the program must not look data up "
            "at deploy time, or this mock must answer it"
        )


class CapturingMonitor(MockMonitor):
    """MockMonitor that also records the options of each registration."""

    def __init__(self, mocks: AzureMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        # Registrations arrive on several threads at once: read this request's own payload.
        inputs = rpc.deserialize_properties(request.object)
        state = rpc.deserialize_properties(response.object) if response.object else {}
        if response.id:
            state = {**state, "id": response.id}
        self.registrations.append(
            Registration(
                type_=request.type,
                name=request.name,
                inputs=inputs,
                urn=response.urn,
                custom=bool(request.custom),
                parent=request.parent,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                depends_on=list(request.dependencies),
                outputs=state,
            )
        )
        return response
