"""The three storage accounts: the archive (recordings, manifests, registry), the ingress
account Event Grid writes to (the events queue, its poison queue, dead letters) and the runtime
account the Functions host and the Flex deployment container live in.

The ingress account exists apart so that, in ``network: private``, only it has to admit Event
Grid as a trusted Azure service (the one way Event Grid delivers through a storage firewall),
while the account that holds the media refuses public network access entirely. The public mode
has the same three accounts, so both modes share one topology, one set of grants and one set of
app settings.

All share one hardened baseline (:func:`hardened_account_args`) so a security property cannot be
fixed on one account and forgotten on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import pulumi
from pulumi_azure_native import storage

from infra.immutability_lock import ImmutabilityLock

RECORDINGS_CONTAINER = "recordings"
DEAD_LETTER_CONTAINER = "event-deadletter"
EVENTS_QUEUE = "recording-events"
POISON_QUEUE = f"{EVENTS_QUEUE}-poison"
REGISTRY_TABLE = "recordings"
DEPLOYMENT_CONTAINER = "app-package"
#: Archive tier exists only on locally and geo-redundant accounts (not ZRS/GZRS).
ARCHIVE_SKU = "Standard_GRS"
#: The runtime and ingress accounts hold no recording, so they need no Archive tier.
RUNTIME_SKU = "Standard_LRS"
#: The runtime and ingress accounts with ``zoneRedundant``.
RUNTIME_ZONE_REDUNDANT_SKU = "Standard_ZRS"


class NetworkAccess(Enum):
    """Who may reach an account's public endpoint (the data plane; ARM is unaffected)."""

    OPEN = "open"
    """``network: public``: any network; Entra ID and the roles decide."""
    TRUSTED_SERVICES_ONLY = "trusted-services-only"
    """The firewall denies every network, no IP or VNet rule, and admits only trusted Azure
    services (``bypass: AzureServices``); the app comes through private endpoints. Event Grid
    delivers to a storage queue and dead-letters to a container behind a firewall only this way,
    with the topic's system-assigned identity ("Storage queue as an event handler", Azure Event
    Grid). ``publicNetworkAccess: Disabled`` turns off the public endpoint itself, and Microsoft
    documents no trusted-service exception for it, so only the ingress account (which holds
    nothing but event notifications and dead letters) is left at this level."""
    PRIVATE_ENDPOINTS_ONLY = "private-endpoints-only"
    """``publicNetworkAccess: Disabled``: only private endpoints reach the account (as in
    Microsoft's Flex Consumption VNet sample for the host and deployment account)."""


def network_access_args(access: NetworkAccess) -> dict[str, Any]:
    """``publicNetworkAccess`` and the firewall (``networkRuleSet``) of one access level."""
    if access is NetworkAccess.OPEN:
        return {"public_network_access": storage.PublicNetworkAccess.ENABLED}
    bypass = (
        storage.Bypass.AZURE_SERVICES
        if access is NetworkAccess.TRUSTED_SERVICES_ONLY
        else storage.Bypass.NONE
    )
    return {
        "public_network_access": (
            storage.PublicNetworkAccess.ENABLED
            if access is NetworkAccess.TRUSTED_SERVICES_ONLY
            else storage.PublicNetworkAccess.DISABLED
        ),
        "network_rule_set": {
            "default_action": storage.DefaultAction.DENY,
            "bypass": bypass,
            "ip_rules": [],
            "virtual_network_rules": [],
        },
    }


def hardened_account_args(
    *,
    resource_group_name: pulumi.Input[str],
    location: str,
    sku: str,
    tags: dict[str, str],
    network_access: NetworkAccess = NetworkAccess.OPEN,
) -> dict[str, Any]:
    """The security baseline every storage account of the solution starts from."""
    return {
        "resource_group_name": resource_group_name,
        "location": location,
        "kind": storage.Kind.STORAGE_V2,
        "sku": {"name": sku},
        "access_tier": storage.AccessTier.HOT,
        "enable_https_traffic_only": True,
        "minimum_tls_version": storage.MinimumTlsVersion.TLS1_2,
        "allow_blob_public_access": False,
        "allow_shared_key_access": False,
        "default_to_o_auth_authentication": True,
        "allow_cross_tenant_replication": False,
        **network_access_args(network_access),
        "encryption": {
            "key_source": storage.KeySource.MICROSOFT_STORAGE,
            "require_infrastructure_encryption": True,
            "services": {
                "blob": {"enabled": True, "key_type": storage.KeyType.ACCOUNT},
                "file": {"enabled": True, "key_type": storage.KeyType.ACCOUNT},
                "queue": {"enabled": True, "key_type": storage.KeyType.ACCOUNT},
                "table": {"enabled": True, "key_type": storage.KeyType.ACCOUNT},
            },
        },
        "tags": tags,
    }


#: The blob index tag the archiver puts on media (content) blobs and only on them.
CONTENT_KIND_TAG = ("kind", "content")


def blob_protection_args(soft_delete_days: int) -> dict[str, Any]:
    """Blob and container soft delete plus versioning: an overwrite or delete is recoverable."""
    return {
        "delete_retention_policy": {"enabled": True, "days": soft_delete_days},
        "container_delete_retention_policy": {"enabled": True, "days": soft_delete_days},
        "is_versioning_enabled": True,
    }


def _expiry_rule(name: str, prefix: str, days: int) -> storage.ManagementPolicyRuleArgsDict:
    """Delete block blobs under ``prefix`` ``days`` after their last modification."""
    return {
        "name": name,
        "enabled": True,
        "type": storage.RuleType.LIFECYCLE,
        "definition": {
            "filters": {"blob_types": ["blockBlob"], "prefix_match": [prefix]},
            "actions": {"base_blob": {"delete": {"days_after_modification_greater_than": days}}},
        },
    }


def _old_versions_rule(version_retention_days: int) -> storage.ManagementPolicyRuleArgsDict:
    """Previous versions (kept by versioning) expire, or every overwrite would be kept forever."""
    return {
        "name": "old-versions-expiry",
        "enabled": True,
        "type": storage.RuleType.LIFECYCLE,
        "definition": {
            "filters": {"blob_types": ["blockBlob"]},
            "actions": {
                "version": {"delete": {"days_after_creation_greater_than": version_retention_days}}
            },
        },
    }


def lifecycle_rules(
    *,
    cool_after_days: int,
    cold_after_days: int,
    archive_after_days: int,
    retention_days: int,
    version_retention_days: int,
) -> list[storage.ManagementPolicyRuleArgsDict]:
    """Lifecycle management rules of the archive, as a pure value a test can read.

    Only media moves to colder tiers (the archiver tags each content blob ``kind=content``):
    manifests and metadata documents stay readable, so an archive can always be listed, checked
    and exported, and its files rehydrated on purpose. Everything expires at ``retention_days``.
    """
    return [
        {
            "name": "recordings-tiering",
            "enabled": True,
            "type": storage.RuleType.LIFECYCLE,
            "definition": {
                "filters": {
                    "blob_types": ["blockBlob"],
                    "prefix_match": [f"{RECORDINGS_CONTAINER}/"],
                    "blob_index_match": [
                        {"name": CONTENT_KIND_TAG[0], "op": "==", "value": CONTENT_KIND_TAG[1]}
                    ],
                },
                "actions": {
                    "base_blob": {
                        "tier_to_cool": {"days_after_modification_greater_than": cool_after_days},
                        "tier_to_cold": {"days_after_modification_greater_than": cold_after_days},
                        "tier_to_archive": {
                            "days_after_modification_greater_than": archive_after_days
                        },
                    }
                },
            },
        },
        _expiry_rule("recordings-retention", f"{RECORDINGS_CONTAINER}/", retention_days),
        _old_versions_rule(version_retention_days),
    ]


def ingress_lifecycle_rules(
    *, dead_letter_retention_days: int, version_retention_days: int
) -> list[storage.ManagementPolicyRuleArgsDict]:
    """Lifecycle rules of the ingress account: dead letters and old versions expire."""
    return [
        _expiry_rule(
            "dead-letters-expiry", f"{DEAD_LETTER_CONTAINER}/", dead_letter_retention_days
        ),
        _old_versions_rule(version_retention_days),
    ]


class _AccountArgs(Protocol):
    """What every account's Args share (:class:`ArchiveStorageArgs` and its siblings)."""

    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    sku: str
    network_access: NetworkAccess
    soft_delete_days: int


def _protected_account(
    name: str, args: _AccountArgs, opts: pulumi.ResourceOptions
) -> tuple[storage.StorageAccount, storage.BlobServiceProperties]:
    """A hardened account and its blob service with soft delete and versioning."""
    account = storage.StorageAccount(
        name,
        **hardened_account_args(
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=args.sku,
            tags=args.tags,
            network_access=args.network_access,
        ),
        opts=opts,
    )
    blob_service = storage.BlobServiceProperties(
        f"{name}-blob-service",
        account_name=account.name,
        resource_group_name=args.resource_group_name,
        blob_services_name="default",
        **blob_protection_args(args.soft_delete_days),
        opts=opts,
    )
    return account, blob_service


def _lifecycle_policy(
    name: str,
    account_name: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    rules: list[storage.ManagementPolicyRuleArgsDict],
    opts: pulumi.ResourceOptions,
) -> storage.ManagementPolicy:
    return storage.ManagementPolicy(
        f"{name}-lifecycle",
        account_name=account_name,
        resource_group_name=resource_group_name,
        management_policy_name="default",
        policy=storage.ManagementPolicySchemaArgsDict(rules=rules),
        opts=opts,
    )


@dataclass
class ArchiveStorageArgs:
    """Inputs of :class:`ArchiveStorage`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group of the account."""
    location: str
    """Required. Azure region."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    lifecycle: list[storage.ManagementPolicyRuleArgsDict]
    """Required. Lifecycle management rules (see :func:`lifecycle_rules`)."""
    soft_delete_days: int = 14
    """Optional. Soft-delete window of blobs and containers."""
    immutability_days: int = 0
    """Optional. Time-based WORM retention on the recordings container; 0 = none."""
    lock_immutability: bool = False
    """Optional. Lock the WORM policy (irreversible); needs immutability_days > 0."""
    retain_on_destroy: bool = True
    """Optional. Keep the account and every child on ``pulumi destroy``."""
    sku: str = ARCHIVE_SKU
    """Optional. Storage SKU; must support the Archive tier."""
    network_access: NetworkAccess = NetworkAccess.OPEN
    """Optional. Who reaches the public endpoint; the private mode allows private endpoints only
    (Event Grid writes to the ingress account, never here)."""


class ArchiveStorage(pulumi.ComponentResource):
    """The archive account: recordings and their manifests, the registry table."""

    account: storage.StorageAccount
    recordings_container: storage.BlobContainer
    registry_table: storage.Table
    immutability_policy: storage.BlobContainerImmutabilityPolicy | None

    def __init__(
        self, name: str, args: ArchiveStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:ArchiveStorage", name, None, opts)
        # Retaining only the account would still let destroy delete its containers (and with
        # them the recordings), so every child that holds data is retained as well.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_destroy)
        self.account, blob_service = _protected_account(name, args, child)
        account_name = self.account.name
        rg = args.resource_group_name
        in_blob_service = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[blob_service])
        )
        self.recordings_container = storage.BlobContainer(
            f"{name}-{RECORDINGS_CONTAINER}",
            account_name=account_name,
            resource_group_name=rg,
            container_name=RECORDINGS_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=in_blob_service,
        )
        self.registry_table = storage.Table(
            f"{name}-{REGISTRY_TABLE}-table",
            account_name=account_name,
            resource_group_name=rg,
            table_name=REGISTRY_TABLE,
            opts=child,
        )
        _lifecycle_policy(name, account_name, rg, args.lifecycle, child)
        self.immutability_policy = None
        if args.immutability_days > 0:
            self.immutability_policy = storage.BlobContainerImmutabilityPolicy(
                f"{name}-recordings-worm",
                account_name=account_name,
                resource_group_name=rg,
                container_name=self.recordings_container.name,
                immutability_policy_name="default",
                immutability_period_since_creation_in_days=args.immutability_days,
                allow_protected_append_writes=False,
                # A locked policy cannot be deleted; protect says so before ARM does.
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(protect=args.lock_immutability)
                ),
            )
            if args.lock_immutability:
                ImmutabilityLock(
                    f"{name}-recordings-worm-lock",
                    policy_id=self.immutability_policy.id,
                    etag=self.immutability_policy.etag,
                    opts=pulumi.ResourceOptions(parent=self, protect=True),
                )
        self.account_name = account_name
        self.account_id = self.account.id
        self.blob_endpoint = self.account.primary_endpoints.blob
        self.table_endpoint = self.account.primary_endpoints.table
        # register_outputs last: the component is complete only once every child exists.
        self.register_outputs({"account_name": account_name, "account_id": self.account_id})


@dataclass
class IngressStorageArgs:
    """Inputs of :class:`IngressStorage`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group of the account."""
    location: str
    """Required. Azure region."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    lifecycle: list[storage.ManagementPolicyRuleArgsDict]
    """Required. Lifecycle management rules (see :func:`ingress_lifecycle_rules`)."""
    soft_delete_days: int = 14
    """Optional. Soft-delete window of dead letters and the container."""
    sku: str = RUNTIME_SKU
    """Optional. Storage SKU (``Standard_ZRS`` with zone redundancy)."""
    network_access: NetworkAccess = NetworkAccess.OPEN
    """Optional. Who reaches the public endpoint; the private mode admits trusted Azure services
    only (Event Grid), everything else comes through private endpoints."""


class IngressStorage(pulumi.ComponentResource):
    """What Event Grid writes and nothing else: the events queue, the poison queue the Functions
    host fills in the trigger connection's account, and the dead-letter container."""

    account: storage.StorageAccount
    dead_letter_container: storage.BlobContainer
    events_queue: storage.Queue
    poison_queue: storage.Queue

    def __init__(
        self, name: str, args: IngressStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:IngressStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account, blob_service = _protected_account(name, args, child)
        account_name = self.account.name
        rg = args.resource_group_name
        self.dead_letter_container = storage.BlobContainer(
            f"{name}-{DEAD_LETTER_CONTAINER}",
            account_name=account_name,
            resource_group_name=rg,
            container_name=DEAD_LETTER_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blob_service]),
        )
        self.events_queue, self.poison_queue = (
            storage.Queue(
                f"{name}-{queue}",
                account_name=account_name,
                resource_group_name=rg,
                queue_name=queue,
                opts=child,
            )
            for queue in (EVENTS_QUEUE, POISON_QUEUE)
        )
        _lifecycle_policy(name, account_name, rg, args.lifecycle, child)
        self.account_name = account_name
        self.account_id = self.account.id
        self.queue_endpoint = self.account.primary_endpoints.queue
        self.register_outputs({"account_name": account_name, "account_id": self.account_id})


@dataclass
class RuntimeStorageArgs:
    """Inputs of :class:`RuntimeStorage`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group of the account."""
    location: str
    """Required. Azure region."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    soft_delete_days: int = 7
    """Optional. Soft-delete window of blobs and containers."""
    sku: str = RUNTIME_SKU
    """Optional. Storage SKU (``Standard_ZRS`` with zone redundancy)."""
    network_access: NetworkAccess = NetworkAccess.OPEN
    """Optional. Who reaches the public endpoint; the private mode allows private endpoints only."""


class RuntimeStorage(pulumi.ComponentResource):
    """The Functions host account (leases, timers, keys) and the Flex deployment container."""

    account: storage.StorageAccount
    deployment_container: storage.BlobContainer

    def __init__(
        self, name: str, args: RuntimeStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RuntimeStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account, blob_service = _protected_account(name, args, child)
        self.deployment_container = storage.BlobContainer(
            f"{name}-{DEPLOYMENT_CONTAINER}",
            account_name=self.account.name,
            resource_group_name=args.resource_group_name,
            container_name=DEPLOYMENT_CONTAINER,
            public_access=storage.PublicAccess.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blob_service]),
        )
        self.account_name = self.account.name
        self.account_id = self.account.id
        self.blob_endpoint = self.account.primary_endpoints.blob
        self.register_outputs({"account_name": self.account_name})
