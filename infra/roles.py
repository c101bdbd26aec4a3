"""Azure role definitions the program assigns: built-in ones as data, and the custom ones it
derives from what the code does (:mod:`infra.data_access`).

The SDK has no constants for built-in roles, and a GUID alone says nothing in a review: each one
is kept here once, next to the role's portal name and the permissions Microsoft publishes for it,
so a test can check that every grant covers what the code calls (and nothing in a review has to
be taken on trust).

Source of every built-in role's permissions: "Azure built-in roles" for Storage, Monitor and
Integration (learn.microsoft.com/azure/role-based-access-control/built-in-roles), checked
2026-12-03.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_STORAGE = "Microsoft.Storage/storageAccounts"
BUILT_IN_ROLES_SOURCE = "https://learn.microsoft.com/azure/role-based-access-control/built-in-roles"


@dataclass(frozen=True)
class Permissions:
    """What a role grants: control-plane style ``actions`` and data-plane ``data_actions``.

    Patterns may end in ``*`` as ARM's do; matching is case-insensitive, as ARM's is.
    """

    actions: frozenset[str] = frozenset()
    data_actions: frozenset[str] = frozenset()

    def grants_action(self, action: str) -> bool:
        return _matches(self.actions, action)

    def grants_data_action(self, data_action: str) -> bool:
        alternatives = (data_action, *IMPLIED_BY.get(data_action.lower(), ()))
        return any(_matches(self.data_actions, wanted) for wanted in alternatives)

    def __or__(self, other: Permissions) -> Permissions:
        return Permissions(self.actions | other.actions, self.data_actions | other.data_actions)


#: Data actions that another one also authorizes. Put Message is "Put a message"
#: (``messages/add/action``) and also part of "Put or update a message" (``messages/write``), as
#: Microsoft's "Actions and attributes for Azure role assignment conditions for Azure Queue
#: Storage" lists them: a role with ``messages/write`` may send messages.
IMPLIED_BY = {
    f"{_STORAGE}/queueServices/queues/messages/add/action".lower(): (
        f"{_STORAGE}/queueServices/queues/messages/write",
    ),
}


def permissions(actions: Iterable[str] = (), data_actions: Iterable[str] = ()) -> Permissions:
    return Permissions(frozenset(actions), frozenset(data_actions))


def _matches(patterns: Iterable[str], wanted: str) -> bool:
    return any(fnmatch.fnmatchcase(wanted.lower(), pattern.lower()) for pattern in patterns)


@dataclass(frozen=True)
class BuiltInRole:
    name: str
    guid: str
    grants: Permissions = field(default_factory=Permissions, compare=False)

    def definition_id(self, subscription_scope: str = "") -> str:
        """Role definition id; without a subscription ARM resolves the provider-level form."""
        return f"{subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/{self.guid}"


STORAGE_BLOB_DATA_OWNER = BuiltInRole(
    "Storage Blob Data Owner",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    permissions(
        [
            f"{_STORAGE}/blobServices/containers/*",
            f"{_STORAGE}/blobServices/generateUserDelegationKey/action",
        ],
        [f"{_STORAGE}/blobServices/containers/blobs/*"],
    ),
)
#: Has no ``blobs/tags/*`` and no ``blobs/filter/action``: a Put Blob or Put Block List that
#: carries index tags (``x-ms-tags``) is refused with it.
STORAGE_BLOB_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Blob Data Contributor",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    permissions(
        [
            f"{_STORAGE}/blobServices/containers/delete",
            f"{_STORAGE}/blobServices/containers/read",
            f"{_STORAGE}/blobServices/containers/write",
            f"{_STORAGE}/blobServices/generateUserDelegationKey/action",
        ],
        [
            f"{_STORAGE}/blobServices/containers/blobs/delete",
            f"{_STORAGE}/blobServices/containers/blobs/read",
            f"{_STORAGE}/blobServices/containers/blobs/write",
            f"{_STORAGE}/blobServices/containers/blobs/move/action",
            f"{_STORAGE}/blobServices/containers/blobs/add/action",
        ],
    ),
)
#: Only ``generateUserDelegationKey`` (account scope): signs user delegation SAS links, which
#: grant no more than the signer's own data roles.
STORAGE_BLOB_DELEGATOR = BuiltInRole(
    "Storage Blob Delegator",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    permissions([f"{_STORAGE}/blobServices/generateUserDelegationKey/action"]),
)
STORAGE_QUEUE_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Queue Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    permissions(
        [
            f"{_STORAGE}/queueServices/queues/delete",
            f"{_STORAGE}/queueServices/queues/read",
            f"{_STORAGE}/queueServices/queues/write",
        ],
        [
            f"{_STORAGE}/queueServices/queues/messages/delete",
            f"{_STORAGE}/queueServices/queues/messages/read",
            f"{_STORAGE}/queueServices/queues/messages/write",
            f"{_STORAGE}/queueServices/queues/messages/process/action",
        ],
    ),
)
STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR = BuiltInRole(
    "Storage Queue Data Message Processor",
    "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    permissions(
        [],
        [
            f"{_STORAGE}/queueServices/queues/messages/read",
            f"{_STORAGE}/queueServices/queues/messages/process/action",
        ],
    ),
)
STORAGE_QUEUE_DATA_MESSAGE_SENDER = BuiltInRole(
    "Storage Queue Data Message Sender",
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    permissions([], [f"{_STORAGE}/queueServices/queues/messages/add/action"]),
)
STORAGE_QUEUE_DATA_READER = BuiltInRole(
    "Storage Queue Data Reader",
    "19e7f393-937e-4f77-808e-94535e297925",
    permissions(
        [f"{_STORAGE}/queueServices/queues/read"],
        [f"{_STORAGE}/queueServices/queues/messages/read"],
    ),
)
STORAGE_TABLE_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Table Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    permissions(
        [
            f"{_STORAGE}/tableServices/tables/read",
            f"{_STORAGE}/tableServices/tables/write",
            f"{_STORAGE}/tableServices/tables/delete",
        ],
        [
            f"{_STORAGE}/tableServices/tables/entities/read",
            f"{_STORAGE}/tableServices/tables/entities/write",
            f"{_STORAGE}/tableServices/tables/entities/delete",
            f"{_STORAGE}/tableServices/tables/entities/add/action",
            f"{_STORAGE}/tableServices/tables/entities/update/action",
        ],
    ),
)
MONITORING_METRICS_PUBLISHER = BuiltInRole(
    "Monitoring Metrics Publisher",
    "3913510d-42f4-4e42-8a64-420c390055eb",
    permissions(
        [
            "Microsoft.Insights/Register/Action",
            "Microsoft.Support/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        ["Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"],
    ),
)
#: ACS honours only built-in roles; Call Automation with a managed identity needs this one on
#: the Communication Services resource (custom roles are not evaluated by ACS). Its permissions
#: are control-plane ones on Microsoft.Communication and are not modelled here.
COMMUNICATION_AND_EMAIL_SERVICE_OWNER = BuiltInRole(
    "Communication and Email Service Owner",
    "09976791-48a7-449e-bb21-39d1a415f350",
    permissions(["Microsoft.Communication/*"]),
)

#: Publishes events to an Event Grid topic (``events/send/action``); the role Microsoft names for
#: a custom topic with Entra ID authentication ("Authenticate publishing clients using Microsoft
#: Entra ID"), assigned on the topic itself.
EVENTGRID_DATA_SENDER = BuiltInRole(
    "EventGrid Data Sender",
    "d5a91429-5739-47e2-a06b-3470a27159e7",
    permissions(
        [
            "Microsoft.Authorization/*/read",
            "Microsoft.EventGrid/topics/read",
            "Microsoft.EventGrid/domains/read",
            "Microsoft.EventGrid/partnerNamespaces/read",
            "Microsoft.EventGrid/namespaces/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        ["Microsoft.EventGrid/events/send/action"],
    ),
)

ALL_ROLES = (
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DELEGATOR,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR,
    STORAGE_QUEUE_DATA_MESSAGE_SENDER,
    STORAGE_QUEUE_DATA_READER,
    STORAGE_TABLE_DATA_CONTRIBUTOR,
    MONITORING_METRICS_PUBLISHER,
    COMMUNICATION_AND_EMAIL_SERVICE_OWNER,
    EVENTGRID_DATA_SENDER,
)
#: Built-in roles by GUID, so a test can turn an assignment back into what it grants.
BY_GUID = {role.guid: role for role in ALL_ROLES}


def subscription_of(resource_id: str) -> str:
    """``/subscriptions/<id>`` of an ARM resource id, the scope role definitions live under."""
    parts = resource_id.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions":
        raise ValueError(f"not an ARM resource id under a subscription: {resource_id!r}")
    return "/".join(parts[:3])


def resource_group_of(resource_id: str) -> str:
    """``/subscriptions/<id>/resourceGroups/<name>`` of an ARM resource id."""
    parts = resource_id.split("/")
    if len(parts) < 5 or parts[3].lower() != "resourcegroups":
        raise ValueError(f"not an ARM resource id in a resource group: {resource_id!r}")
    return "/".join(parts[:5])


@dataclass(frozen=True)
class CustomRoleSpec:
    """A role the program defines because no built-in role grants exactly what is needed."""

    title: str
    grants: Permissions


def define_custom_role(
    name: str,
    spec: CustomRoleSpec,
    resource_group_id: Any,
    owner_name: Any,
    parent: Any,
) -> Any:
    """A custom role assignable only inside the stack's resource group.

    Role names are unique per tenant, so the name ends with ``owner_name`` (the globally unique
    name of the resource whose identity holds it). The definition's GUID is derived from the
    group, the owner and ``name``, so a re-run finds the same definition instead of a duplicate
    and two stacks in one resource group never share one.
    """
    import uuid

    import pulumi
    from pulumi_azure_native import authorization

    group = pulumi.Output.from_input(resource_group_id)
    return authorization.RoleDefinition(
        name,
        role_definition_id=pulumi.Output.all(group, owner_name).apply(
            lambda values: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{values[0]}/{values[1]}/{name}"))
        ),
        role_name=pulumi.Output.from_input(owner_name).apply(lambda o: f"{spec.title} ({o})"),
        description=f"acs-call-recording: exactly the permissions its code uses ({spec.title}).",
        role_type="CustomRole",
        scope=group,
        assignable_scopes=[group],
        permissions=[
            authorization.PermissionArgs(
                actions=sorted(spec.grants.actions),
                data_actions=sorted(spec.grants.data_actions),
            )
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )


def assign_role(
    name: str,
    role: BuiltInRole | Any,
    principal_id: Any,
    scope: Any,
    parent: Any,
    depends_on: Sequence[Any] = (),
) -> Any:
    """Grant ``role`` on ``scope`` to a managed identity.

    ``role`` is a :class:`BuiltInRole` or a custom ``RoleDefinition`` resource (its ``id``).
    principal_type is always ServicePrincipal: the SDK's default (User) makes ARM look the id up
    in the wrong directory collection and a fresh identity then fails to replicate in time.
    """
    import pulumi
    from pulumi_azure_native import authorization

    scope_output = pulumi.Output.from_input(scope)
    if isinstance(role, BuiltInRole):
        definition_id = scope_output.apply(lambda s: role.definition_id(subscription_of(s)))
        role_name = role.name
    else:
        definition_id = role.id
        role_name = "custom role"
    return authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=definition_id,
        scope=scope_output,
        description=f"{role_name} for {name}",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
