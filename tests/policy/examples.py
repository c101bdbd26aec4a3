"""Hand-made resource properties that meet the baseline, one builder per resource type.

Tests flip one property at a time from these, so each builder returns a fresh deep copy.
"""

from __future__ import annotations

from typing import Any

from policy import baseline

TAGS = {"app": "acs-call-recording", "environment": "dev", "managed-by": "pulumi"}
ARCHIVE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Storage/storageAccounts/archive"
)


def storage_account() -> dict[str, Any]:
    return {
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "enableHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "tags": dict(TAGS),
    }


def blob_service_properties() -> dict[str, Any]:
    return {
        "accountName": "archive",
        "blobServicesName": "default",
        "deleteRetentionPolicy": {"enabled": True, "days": 14},
        "containerDeleteRetentionPolicy": {"enabled": True, "days": 14},
        "isVersioningEnabled": True,
    }


def web_app() -> dict[str, Any]:
    return {
        "name": "recording-api",
        "kind": "functionapp,linux",
        "httpsOnly": True,
        "identity": {"type": "SystemAssigned"},
        "siteConfig": {"minTlsVersion": "1.2", "ftpsState": "Disabled", "scmMinTlsVersion": "1.2"},
        "tags": dict(TAGS),
    }


def publishing_credentials() -> dict[str, Any]:
    return {"name": "recording-api", "resourceGroupName": "rg", "allow": False}


def event_subscription() -> dict[str, Any]:
    return {
        "systemTopicName": "acs-events",
        "deliveryWithResourceIdentity": {
            "identity": {"type": "SystemAssigned"},
            "destination": {
                "endpointType": "StorageQueue",
                "resourceId": ARCHIVE_ID,
                "queueName": "recording-events",
            },
        },
        "deadLetterWithResourceIdentity": {
            "identity": {"type": "SystemAssigned"},
            "deadLetterDestination": {
                "endpointType": "StorageBlob",
                "resourceId": ARCHIVE_ID,
                "blobContainerName": "dead-letters",
            },
        },
        "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
    }


def management_policy() -> dict[str, Any]:
    return {
        "accountName": "archive",
        "managementPolicyName": "default",
        "policy": {
            "rules": [
                {
                    "name": "recordings-tiering",
                    "enabled": True,
                    "type": "Lifecycle",
                    "definition": {
                        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["recordings/"]},
                        "actions": {
                            "baseBlob": {
                                "tierToCool": {"daysAfterModificationGreaterThan": 30},
                                "delete": {"daysAfterModificationGreaterThan": 365},
                            }
                        },
                    },
                }
            ]
        },
    }


def role_assignment() -> dict[str, Any]:
    return {
        "principalId": "11111111-1111-1111-1111-111111111111",
        "principalType": "ServicePrincipal",
        "roleDefinitionId": (
            "/providers/Microsoft.Authorization/roleDefinitions/"
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
        ),
        "scope": ARCHIVE_ID,
    }


def role_definition() -> dict[str, Any]:
    group = ARCHIVE_ID.split("/providers/")[0]
    return {
        "roleName": "Recordings archive writer (func-x)",
        "scope": group,
        "assignableScopes": [group],
        "permissions": [
            {
                "actions": [],
                "dataActions": [
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write",
                ],
            }
        ],
    }


def communication_service() -> dict[str, Any]:
    return {"location": "global", "dataLocation": "Europe", "tags": dict(TAGS)}


def event_grid_topic() -> dict[str, Any]:
    return {
        "location": "westeurope",
        "inputSchema": "CloudEventSchemaV1_0",
        "disableLocalAuth": True,
        "publicNetworkAccess": "Enabled",
        "minimumTlsVersionAllowed": "1.2",
        "tags": dict(TAGS),
    }


COMPLIANT: dict[str, Any] = {
    baseline.STORAGE_ACCOUNT: storage_account,
    baseline.BLOB_SERVICE_PROPERTIES: blob_service_properties,
    baseline.WEB_APP: web_app,
    baseline.WEB_APP_FTP_ALLOWED: publishing_credentials,
    baseline.WEB_APP_SCM_ALLOWED: publishing_credentials,
    baseline.SYSTEM_TOPIC_EVENT_SUBSCRIPTION: event_subscription,
    baseline.MANAGEMENT_POLICY: management_policy,
    baseline.ROLE_ASSIGNMENT: role_assignment,
    baseline.ROLE_DEFINITION: role_definition,
    baseline.EVENT_GRID_TOPIC: event_grid_topic,
    "azure-native:communication:CommunicationService": communication_service,
}


def set_path(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path in place (creating parents) and return ``props``."""
    *parents, leaf = path.split(".")
    current = props
    for part in parents:
        current = current.setdefault(part, {})
    current[leaf] = value
    return props


def delete_path(props: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    current = props
    for part in parents:
        current = current[part]
    del current[leaf]
    return props
