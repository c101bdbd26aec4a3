"""Built-in Azure role definitions the program assigns, by name and GUID.

The SDK has no constants for them, and a GUID alone says nothing in a review: each one is kept
here once, next to the role's portal name, and assignments refer to the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuiltInRole:
    name: str
    guid: str

    def definition_id(self, subscription_scope: str = "") -> str:
        """Role definition id; without a subscription ARM resolves the provider-level form."""
        return f"{subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/{self.guid}"


STORAGE_BLOB_DATA_OWNER = BuiltInRole(
    "Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
)
STORAGE_BLOB_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
)
#: Only ``generateUserDelegationKey`` (account scope): signs user delegation SAS links, which
#: grant no more than the signer's own data roles.
STORAGE_BLOB_DELEGATOR = BuiltInRole(
    "Storage Blob Delegator", "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
)
STORAGE_QUEUE_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
)
STORAGE_QUEUE_DATA_MESSAGE_SENDER = BuiltInRole(
    "Storage Queue Data Message Sender", "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
)
STORAGE_TABLE_DATA_CONTRIBUTOR = BuiltInRole(
    "Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
)
MONITORING_METRICS_PUBLISHER = BuiltInRole(
    "Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb"
)
#: ACS honours only built-in roles; Call Automation with a managed identity needs this one on
#: the Communication Services resource (custom roles are not evaluated by ACS).
COMMUNICATION_AND_EMAIL_SERVICE_OWNER = BuiltInRole(
    "Communication and Email Service Owner", "09976791-48a7-449e-bb21-39d1a415f350"
)

ALL_ROLES = (
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DELEGATOR,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    STORAGE_QUEUE_DATA_MESSAGE_SENDER,
    STORAGE_TABLE_DATA_CONTRIBUTOR,
    MONITORING_METRICS_PUBLISHER,
    COMMUNICATION_AND_EMAIL_SERVICE_OWNER,
)


def subscription_of(resource_id: str) -> str:
    """``/subscriptions/<id>`` of an ARM resource id, the scope role definitions live under."""
    parts = resource_id.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions":
        raise ValueError(f"not an ARM resource id under a subscription: {resource_id!r}")
    return "/".join(parts[:3])


def assign_role(
    name: str,
    role: BuiltInRole,
    principal_id: Any,
    scope: Any,
    parent: Any,
) -> Any:
    """Grant ``role`` on ``scope`` to a managed identity.

    principal_type is always ServicePrincipal: the SDK's default (User) makes ARM look the id up
    in the wrong directory collection and a fresh identity then fails to replicate in time.
    """
    import pulumi
    from pulumi_azure_native import authorization

    scope_output = pulumi.Output.from_input(scope)
    return authorization.RoleAssignment(
        name,
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=scope_output.apply(lambda s: role.definition_id(subscription_of(s))),
        scope=scope_output,
        description=f"{role.name} for {name}",
        opts=pulumi.ResourceOptions(parent=parent),
    )
