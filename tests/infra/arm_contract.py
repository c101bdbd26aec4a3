"""Check what the program registers against Microsoft's generated management SDK models.

Pulumi mocks accept any property and any value, so a misspelled property, an enum value ARM does
not know or a read-only field would reach Azure untested. Microsoft's ``azure-mgmt-*`` packages
carry, per API version, each request body's model: its fields (``_attribute_map``), which are
required or read-only and their declared limits (``_validation``), the enum each string field
takes (its ``__init__`` annotation) and the subclasses of polymorphic fields (``_subtype_map``).
:func:`check_resource` walks the engine's camelCase inputs of one registration through the
model of its type (:data:`CONTRACTS`) and lists every mismatch as one line naming the path.

Input names are matched to model fields by their letters, ignoring case and underscores: the
SDKs name fields after the same client names Pulumi does (``enableHttpsTrafficOnly`` is
``enable_https_traffic_only``, whose wire name is ``supportsHttpsTrafficOnly``), and Pulumi
flattens ``properties`` the way the models' ``properties.x`` keys do.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pulumi.runtime import rpc

_LIST = re.compile(r"^\[(?P<item>.+)\]$")
_DICT = re.compile(r"^\{(?P<item>.+)\}$")
_MODEL_REF = re.compile(r"_models\.(\w+)")
_SCALARS = {"str", "int", "long", "float", "bool", "object", "iso-8601", "duration", "date"}


@dataclass(frozen=True)
class Contract:
    """The management SDK model that describes one azure-native resource type's request body."""

    type_: str
    """azure-native type token."""
    pulumi_api_version: str
    """API version pulumi-azure-native uses for the type (its class docstring says so)."""
    package: str
    """Pinned PyPI package (requirements.txt) that ships the model."""
    models: str
    """Module holding the model classes."""
    model: str
    """Class of the PUT body."""
    model_api_version: str
    """API version of that model; differs from pulumi's when the package no longer ships it."""
    path_inputs: tuple[str, ...] = ("resourceGroupName",)
    """Inputs that are URL segments, not body properties."""


def _c(
    type_: str,
    pulumi_version: str,
    package: str,
    models: str,
    model: str,
    model_version: str | None = None,
    *path: str,
    rg: bool = True,
) -> Contract:
    path_inputs = (("resourceGroupName",) if rg else ()) + path
    return Contract(
        type_, pulumi_version, package, models, model, model_version or pulumi_version, path_inputs
    )


_STORAGE = ("azure-mgmt-storage==23.0.0", "azure.mgmt.storage.models")
_NETWORK = ("azure-mgmt-network==28.1.0", "azure.mgmt.network.models")
_DNS = ("azure-mgmt-privatedns==1.2.0", "azure.mgmt.privatedns.models")
_WEB = ("azure-mgmt-web==10.1.0", "azure.mgmt.web.models")
_EVENTGRID = ("azure-mgmt-eventgrid==10.4.0", "azure.mgmt.eventgrid.models")
_MONITOR = "azure-mgmt-monitor==6.0.2"
_AUTH = "azure-mgmt-authorization==4.0.0"

#: Every azure-native type the program registers, with the model its PUT body must fit. The
#: fourth column differs from the second where the pinned package does not ship pulumi's version:
#: then it is the closest version that package (or its small single-version release) ships.
CONTRACTS: dict[str, Contract] = {
    c.type_: c
    for c in (
        _c("azure-native:resources:ResourceGroup", "2024-03-01", "azure-mgmt-resource==25.0.0",
           "azure.mgmt.resource.resources.models", "ResourceGroup", "2025-04-01"),
        _c("azure-native:storage:StorageAccount", "2024-01-01", *_STORAGE,
           "StorageAccountCreateParameters", None, "accountName"),
        _c("azure-native:storage:BlobServiceProperties", "2024-01-01", *_STORAGE,
           "BlobServiceProperties", None, "accountName", "blobServicesName"),
        _c("azure-native:storage:BlobContainer", "2024-01-01", *_STORAGE, "BlobContainer", None,
           "accountName", "containerName"),
        _c("azure-native:storage:Queue", "2024-01-01", *_STORAGE, "StorageQueue", None,
           "accountName", "queueName"),
        _c("azure-native:storage:Table", "2024-01-01", *_STORAGE, "Table", None, "accountName",
           "tableName"),
        _c("azure-native:storage:ManagementPolicy", "2024-01-01", *_STORAGE, "ManagementPolicy",
           None, "accountName", "managementPolicyName"),
        _c("azure-native:storage:BlobContainerImmutabilityPolicy", "2024-01-01", *_STORAGE,
           "ImmutabilityPolicy", None, "accountName", "containerName", "immutabilityPolicyName"),
        _c("azure-native:communication:CommunicationService", "2026-03-18",
           "azure-mgmt-communication==2.2.0", "azure.mgmt.communication.models",
           "CommunicationServiceResource", "2025-09-01", "communicationServiceName"),
        _c("azure-native:web:AppServicePlan", "2025-05-01", *_WEB, "AppServicePlan",
           "2025-03-01", "name"),
        _c("azure-native:web:WebApp", "2025-05-01", *_WEB, "Site", "2025-03-01", "name"),
        _c("azure-native:web:WebAppFtpAllowed", "2025-05-01", *_WEB,
           "CsmPublishingCredentialsPoliciesEntity", "2025-03-01", "name"),
        _c("azure-native:web:WebAppScmAllowed", "2025-05-01", *_WEB,
           "CsmPublishingCredentialsPoliciesEntity", "2025-03-01", "name"),
        _c("azure-native:operationalinsights:Workspace", "2023-09-01",
           "azure-mgmt-loganalytics==13.1.1", "azure.mgmt.loganalytics.models", "Workspace",
           "2025-07-01", "workspaceName"),
        _c("azure-native:applicationinsights:Component", "2020-02-02",
           "azure-mgmt-applicationinsights==4.1.0",
           "azure.mgmt.applicationinsights.v2020_02_02.models", "ApplicationInsightsComponent",
           None, "resourceName"),
        _c("azure-native:eventgrid:SystemTopic", "2025-02-15", *_EVENTGRID, "SystemTopic", None,
           "systemTopicName"),
        _c("azure-native:eventgrid:SystemTopicEventSubscription", "2025-02-15", *_EVENTGRID,
           "EventSubscription", None, "systemTopicName", "eventSubscriptionName"),
        _c("azure-native:eventgrid:Topic", "2025-02-15", *_EVENTGRID, "Topic", None, "topicName"),
        _c("azure-native:monitor:ActionGroup", "2024-10-01-preview", _MONITOR,
           "azure.mgmt.monitor.v2023_01_01.models", "ActionGroupResource", "2023-01-01",
           "actionGroupName"),
        _c("azure-native:monitor:MetricAlert", "2018-03-01", _MONITOR,
           "azure.mgmt.monitor.v2018_03_01.models", "MetricAlertResource", None, "ruleName"),
        _c("azure-native:monitor:ScheduledQueryRule", "2025-01-01-preview", _MONITOR,
           "azure.mgmt.monitor.v2022_08_01_preview.models", "ScheduledQueryRuleResource",
           "2022-08-01-preview", "ruleName"),
        _c("azure-native:monitor:DiagnosticSetting", "2021-05-01-preview", _MONITOR,
           "azure.mgmt.monitor.v2021_05_01_preview.models", "DiagnosticSettingsResource", None,
           "resourceUri", "name", rg=False),
        _c("azure-native:authorization:RoleAssignment", "2022-04-01", _AUTH,
           "azure.mgmt.authorization.v2022_04_01.models", "RoleAssignmentCreateParameters", None,
           "scope", "roleAssignmentName", rg=False),
        _c("azure-native:authorization:RoleDefinition", "2022-05-01-preview", _AUTH,
           "azure.mgmt.authorization.v2022_05_01_preview.models", "RoleDefinition", None,
           "scope", "roleDefinitionId", rg=False),
        _c("azure-native:network:VirtualNetwork", "2024-05-01", *_NETWORK, "VirtualNetwork",
           None, "virtualNetworkName"),
        _c("azure-native:network:Subnet", "2024-05-01", *_NETWORK, "Subnet", None,
           "virtualNetworkName", "subnetName"),
        _c("azure-native:network:NetworkSecurityGroup", "2024-05-01", *_NETWORK,
           "NetworkSecurityGroup", None, "networkSecurityGroupName"),
        _c("azure-native:network:PublicIPAddress", "2024-05-01", *_NETWORK, "PublicIPAddress",
           None, "publicIpAddressName"),
        _c("azure-native:network:NatGateway", "2024-05-01", *_NETWORK, "NatGateway", None,
           "natGatewayName"),
        _c("azure-native:network:PrivateEndpoint", "2024-05-01", *_NETWORK, "PrivateEndpoint",
           None, "privateEndpointName"),
        _c("azure-native:network:PrivateDnsZoneGroup", "2024-05-01", *_NETWORK,
           "PrivateDnsZoneGroup", None, "privateEndpointName", "privateDnsZoneGroupName"),
        _c("azure-native:privatedns:PrivateZone", "2024-06-01", *_DNS, "PrivateZone", None,
           "privateZoneName"),
        _c("azure-native:privatedns:VirtualNetworkLink", "2024-06-01", *_DNS,
           "VirtualNetworkLink", None, "privateZoneName", "virtualNetworkLinkName"),
    )
}  # fmt: skip


def _norm(name: str) -> str:
    return name.replace("_", "").replace(".", "").replace("\\", "").lower()


@dataclass(frozen=True)
class _Field:
    attribute: str
    type_: str
    rules: Mapping[str, Any]


def _fields(model: type) -> dict[str, _Field]:
    """Model fields by normalised name (client name and wire name both lead to the field)."""
    validation = getattr(model, "_validation", {}) or {}
    found: dict[str, _Field] = {}
    for attribute, spec in model._attribute_map.items():  # type: ignore[attr-defined]
        if not spec["key"]:  # additional_properties: a catch-all, not a named property
            continue
        field = _Field(attribute, spec["type"], validation.get(attribute, {}))
        wire = re.split(r"(?<!\\)\.", spec["key"])[-1]
        for name in (attribute, wire):
            found.setdefault(_norm(name), field)
    return found


def _enum_of(model: type, attribute: str, models: ModuleType) -> type[enum.Enum] | None:
    """The enum a string field takes, read from the annotation of the model's constructor."""
    try:
        parameter = inspect.signature(model).parameters.get(attribute)
    except (TypeError, ValueError):
        return None
    if parameter is None:
        return None
    for name in _MODEL_REF.findall(str(parameter.annotation)):
        candidate = getattr(models, name, None)
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate
    return None


def _concrete(model: type, value: Mapping[str, Any], models: ModuleType) -> type:
    """The subclass a polymorphic model's discriminator value selects."""
    # A subclass inherits its base's map: only the class that declares it resolves it.
    subtypes = model.__dict__.get("_subtype_map") or {}
    for attribute, mapping in subtypes.items():
        names = {
            _norm(name) for name, field in _fields(model).items() if field.attribute == attribute
        }
        chosen = next((v for k, v in value.items() if _norm(k) in names), None)
        if isinstance(chosen, str) and chosen in mapping:
            subclass = getattr(models, mapping[chosen])
            return subclass if subclass is model else _concrete(subclass, value, models)
    return model


def _is_whole(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )


def _check_rules(value: Any, rules: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    if isinstance(value, str):
        if "max_length" in rules and len(value) > rules["max_length"]:
            problems.append(f"{where}: {value!r} is longer than {rules['max_length']}")
        if "min_length" in rules and len(value) < rules["min_length"]:
            problems.append(f"{where}: {value!r} is shorter than {rules['min_length']}")
        if "pattern" in rules and not re.match(rules["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {rules['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "maximum" in rules and value > rules["maximum"]:
            problems.append(f"{where}: {value!r} is above the maximum {rules['maximum']}")
        if "minimum" in rules and value < rules["minimum"]:
            problems.append(f"{where}: {value!r} is below the minimum {rules['minimum']}")
    if isinstance(value, list):
        if "max_items" in rules and len(value) > rules["max_items"]:
            problems.append(f"{where}: {len(value)} items, at most {rules['max_items']}")
        if "min_items" in rules and len(value) < rules["min_items"]:
            problems.append(f"{where}: {len(value)} items, at least {rules['min_items']}")
    return problems


def _check_value(
    type_: str, value: Any, where: str, models: ModuleType, enum_class: type | None
) -> list[str]:
    if value is None or value == rpc.UNKNOWN:
        return []
    if match := _LIST.match(type_):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list ({type_})"]
        return [
            p
            for index, item in enumerate(value)
            for p in _check_value(match["item"], item, f"{where}[{index}]", models, enum_class)
        ]
    if match := _DICT.match(type_):
        if not isinstance(value, Mapping):
            return [f"{where}: {value!r} is not a map ({type_})"]
        return [
            p
            for key, item in value.items()
            for p in _check_value(match["item"], item, f"{where}.{key}", models, None)
        ]
    if type_ in ("int", "long"):
        return [] if _is_whole(value) else [f"{where}: {value!r} is not an integer"]
    if type_ == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not a number"]
    if type_ == "bool":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if type_ in ("str", "iso-8601", "duration", "date"):
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if enum_class is not None:
            allowed = [str(member.value) for member in enum_class]  # type: ignore[attr-defined]
            if value.lower() not in {a.lower() for a in allowed}:
                return [f"{where}: {value!r} is not one of {enum_class.__name__}: {allowed}"]
        return []
    if type_ in _SCALARS:
        return []
    model = getattr(models, type_, None)
    if model is None:
        return [f"{where}: the contract knows no model {type_}"]
    if not isinstance(value, Mapping):
        return [f"{where}: {value!r} is not an object ({type_})"]
    return check_model(model, value, where, models)


def check_model(model: type, value: Mapping[str, Any], where: str, models: ModuleType) -> list[str]:
    """Every way ``value`` (engine inputs, camelCase) does not fit ``model``."""
    model = _concrete(model, value, models)
    fields = _fields(model)
    problems: list[str] = []
    given: set[str] = set()
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        field = fields.get(_norm(key))
        if field is None:
            problems.append(f"{path}: unknown property of {model.__name__}")
            continue
        given.add(field.attribute)
        if field.rules.get("readonly") and item is not None:
            problems.append(f"{path}: read-only in {model.__name__}, ARM ignores or refuses it")
            continue
        problems += _check_rules(item, field.rules, path)
        problems += _check_value(
            field.type_, item, path, models, _enum_of(model, field.attribute, models)
        )
    for attribute, rules in (getattr(model, "_validation", {}) or {}).items():
        if rules.get("required") and not rules.get("readonly") and attribute not in given:
            problems.append(f"{where or model.__name__}: required {attribute} is missing")
    return problems


def _contract_body(
    type_: str, inputs: Mapping[str, Any]
) -> tuple[type, dict[str, Any], ModuleType]:
    """The model of ``type_``, the inputs that form its body (no URL segment), its module."""
    contract = CONTRACTS[type_]
    models = importlib.import_module(contract.models)
    body = {
        key: value
        for key, value in inputs.items()
        if key not in contract.path_inputs and not key.startswith("__")
    }
    return getattr(models, contract.model), body, models


def check_resource(type_: str, inputs: Mapping[str, Any]) -> list[str]:
    """Problems of one registration's inputs against its type's contract."""
    model, body, models = _contract_body(type_, inputs)
    return check_model(model, body, "", models)


def _wire_value(type_: str, value: Any, models: ModuleType) -> Any:
    if value is None:
        return None
    if match := _LIST.match(type_):
        return [_wire_value(match["item"], item, models) for item in value]
    if match := _DICT.match(type_):
        return {key: _wire_value(match["item"], item, models) for key, item in value.items()}
    if type_ in ("int", "long") and _is_whole(value):
        return int(value)
    model = getattr(models, type_, None)
    if model is not None and isinstance(value, Mapping):
        return wire_body(model, value, models)
    return value


def wire_body(model: type, value: Mapping[str, Any], models: ModuleType) -> dict[str, Any]:
    """``value`` (engine inputs) as ARM's JSON names and nesting (``properties.*``), the way the
    SDK serialises ``model``: what ARM receives and what a template scanner reads."""
    model = _concrete(model, value, models)
    fields = _fields(model)
    body: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(_norm(key))
        if field is None:
            raise KeyError(f"{key}: unknown property of {model.__name__}")
        spec = model._attribute_map[field.attribute]  # type: ignore[attr-defined]
        *parents, leaf = [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", spec["key"])]
        target = body
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = _wire_value(field.type_, item, models)
    return body


def arm_body(type_: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The ARM request body of one registration (path inputs left out)."""
    model, body, models = _contract_body(type_, inputs)
    return wire_body(model, body, models)
