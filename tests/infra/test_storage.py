"""The archive, ingress and runtime storage accounts, their children, lifecycle and retention
options."""

from __future__ import annotations

import pytest

from tests.infra.harness import ProgramRun, run_program
from tests.infra.queries import STORAGE_ACCOUNT, dig, of_type, one

RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
ARCHIVE = "acsrecarch"
INGRESS = "acsrecingr"
RUNTIME = "acsrechost"


@pytest.mark.parametrize("account", [ARCHIVE, INGRESS, RUNTIME])
def test_every_storage_account_has_the_hardened_baseline(
    default_run: ProgramRun, account: str
) -> None:
    inputs = one(default_run.registrations, STORAGE_ACCOUNT, account).inputs
    assert inputs["kind"] == "StorageV2"
    assert inputs["enableHttpsTrafficOnly"] is True
    assert inputs["minimumTlsVersion"] == "TLS1_2"
    assert inputs["allowBlobPublicAccess"] is False
    assert inputs["allowSharedKeyAccess"] is False
    assert inputs["defaultToOAuthAuthentication"] is True
    assert inputs["allowCrossTenantReplication"] is False
    assert dig(inputs, "encryption", "requireInfrastructureEncryption") is True


def test_archive_sku_supports_the_archive_tier(default_run: ProgramRun) -> None:
    # ZRS/GZRS accounts have no Archive tier; the lifecycle rule would fail on them.
    sku = one(default_run.registrations, STORAGE_ACCOUNT, ARCHIVE).inputs["sku"]["name"]
    assert sku in {"Standard_LRS", "Standard_GRS", "Standard_RAGRS"}


@pytest.mark.parametrize("account", [ARCHIVE, INGRESS, RUNTIME])
def test_blob_soft_delete_container_soft_delete_and_versioning(
    default_run: ProgramRun, account: str
) -> None:
    service = one(
        default_run.registrations,
        "azure-native:storage:BlobServiceProperties",
        f"{account}-blob-service",
    ).inputs
    assert service["blobServicesName"] == "default"
    assert service["isVersioningEnabled"] is True
    assert service["deleteRetentionPolicy"] == {
        "enabled": True,
        "days": 7 if account == RUNTIME else 14,
    }
    assert service["containerDeleteRetentionPolicy"]["enabled"] is True
    assert service["containerDeleteRetentionPolicy"]["days"] >= 7


def _children(regs: list, account: str, type_: str, key: str) -> dict[str, dict]:
    account_name = one(regs, STORAGE_ACCOUNT, account).outputs["name"]
    return {
        r.inputs[key]: r.inputs
        for r in of_type(regs, f"azure-native:storage:{type_}")
        if r.inputs["accountName"] == account_name
    }


def test_archive_holds_recordings_and_the_registry_only(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    containers = _children(regs, ARCHIVE, "BlobContainer", "containerName")
    assert set(containers) == {"recordings"}
    assert containers["recordings"]["publicAccess"] == "None"
    assert _children(regs, ARCHIVE, "Queue", "queueName") == {}
    assert set(_children(regs, ARCHIVE, "Table", "tableName")) == {"recordings"}


def test_ingress_holds_only_what_event_grid_and_the_host_write(default_run: ProgramRun) -> None:
    """Events queue, the host's poison queue (in the trigger connection's account) and dead
    letters: nothing that holds media, so only this account need admit Event Grid."""
    regs = default_run.registrations
    containers = _children(regs, INGRESS, "BlobContainer", "containerName")
    assert set(containers) == {"event-deadletter"}
    assert containers["event-deadletter"]["publicAccess"] == "None"
    queues = _children(regs, INGRESS, "Queue", "queueName")
    assert set(queues) == {"recording-events", "recording-events-poison"}
    assert _children(regs, INGRESS, "Table", "tableName") == {}


def test_runtime_account_has_the_flex_deployment_container(default_run: ProgramRun) -> None:
    runtime_name = one(default_run.registrations, STORAGE_ACCOUNT, RUNTIME).outputs["name"]
    container = one(
        default_run.registrations, "azure-native:storage:BlobContainer", f"{RUNTIME}-app-package"
    ).inputs
    assert container["accountName"] == runtime_name
    assert container["publicAccess"] == "None"


def _rules(run_registrations: list) -> dict[str, dict]:
    """Every lifecycle rule of the stack by name, each policy checked to sit on its account."""
    rules: dict[str, dict] = {}
    for account, names in (
        (ARCHIVE, {"recordings-tiering", "recordings-retention", "old-versions-expiry"}),
        (INGRESS, {"dead-letters-expiry", "old-versions-expiry"}),
    ):
        policy = one(
            run_registrations, "azure-native:storage:ManagementPolicy", f"{account}-lifecycle"
        ).inputs
        assert policy["managementPolicyName"] == "default"
        assert (
            policy["accountName"]
            == one(run_registrations, STORAGE_ACCOUNT, account).outputs["name"]
        )
        own = {rule["name"]: rule for rule in policy["policy"]["rules"]}
        assert set(own) == names, account
        rules.update(own)
    return rules


def test_lifecycle_rules_follow_the_default_config(default_run: ProgramRun) -> None:
    rules = _rules(default_run.registrations)
    assert all(rule["enabled"] is True and rule["type"] == "Lifecycle" for rule in rules.values())
    tiering = rules["recordings-tiering"]["definition"]
    # Only media is tiered: manifests and metadata stay readable (listing, export, rehydration).
    assert tiering["filters"] == {
        "blobTypes": ["blockBlob"],
        "prefixMatch": ["recordings/"],
        "blobIndexMatch": [{"name": "kind", "op": "==", "value": "content"}],
    }
    assert tiering["actions"]["baseBlob"] == {
        "tierToCool": {"daysAfterModificationGreaterThan": 30},
        "tierToCold": {"daysAfterModificationGreaterThan": 90},
        "tierToArchive": {"daysAfterModificationGreaterThan": 180},
    }
    retention = rules["recordings-retention"]["definition"]
    assert retention["filters"] == {"blobTypes": ["blockBlob"], "prefixMatch": ["recordings/"]}
    assert retention["actions"] == {
        "baseBlob": {"delete": {"daysAfterModificationGreaterThan": 2555}}
    }
    dead = rules["dead-letters-expiry"]["definition"]
    assert dead["filters"]["prefixMatch"] == ["event-deadletter/"]
    assert dead["actions"] == {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 30}}}
    versions = rules["old-versions-expiry"]["definition"]
    assert versions["actions"] == {"version": {"delete": {"daysAfterCreationGreaterThan": 30}}}


def test_lifecycle_rules_follow_custom_config() -> None:
    regs = run_program(
        {
            "coolAfterDays": 7,
            "coldAfterDays": 45,
            "archiveAfterDays": 100,
            "retentionDays": 400,
            "deadLetterRetentionDays": 12,
            "versionRetentionDays": 9,
        }
    )
    rules = _rules(regs)
    base = rules["recordings-tiering"]["definition"]["actions"]["baseBlob"]
    tiers = ("tierToCool", "tierToCold", "tierToArchive")
    assert [base[k]["daysAfterModificationGreaterThan"] for k in tiers] == [7, 45, 100]
    retention = rules["recordings-retention"]["definition"]["actions"]["baseBlob"]
    assert retention == {"delete": {"daysAfterModificationGreaterThan": 400}}
    dead_delete = rules["dead-letters-expiry"]["definition"]["actions"]["baseBlob"]["delete"]
    assert dead_delete == {"daysAfterModificationGreaterThan": 12}
    version_delete = rules["old-versions-expiry"]["definition"]["actions"]["version"]["delete"]
    assert version_delete == {"daysAfterCreationGreaterThan": 9}


def test_no_immutability_policy_by_default(default_run: ProgramRun) -> None:
    assert (
        of_type(default_run.registrations, "azure-native:storage:BlobContainerImmutabilityPolicy")
        == []
    )
    assert [r for r in default_run.registrations if r.name.endswith("worm-lock")] == []


def test_immutability_days_put_an_unlocked_worm_policy_on_recordings() -> None:
    regs = run_program({"immutabilityDays": 365})
    policy = one(regs, "azure-native:storage:BlobContainerImmutabilityPolicy")
    assert policy.inputs["containerName"] == "recordings"
    assert policy.inputs["immutabilityPeriodSinceCreationInDays"] == 365
    assert policy.inputs["allowProtectedAppendWrites"] is False
    assert policy.protect is False
    assert [r for r in regs if r.name.endswith("worm-lock")] == []


def test_lock_immutability_locks_the_policy_with_its_etag() -> None:
    regs = run_program({"immutabilityDays": 365, "lockImmutability": True})
    policy = one(regs, "azure-native:storage:BlobContainerImmutabilityPolicy")
    lock = one(regs, "pulumi-python:dynamic:Resource", "acsrecarch-recordings-worm-lock")
    assert policy.protect is True and lock.protect is True
    assert lock.inputs["policy_id"].endswith("/containers/recordings/immutabilityPolicies/default")
    assert lock.inputs["etag"] == policy.outputs["etag"]


def test_archive_and_its_data_are_retained_on_destroy_by_default(default_run: ProgramRun) -> None:
    archive_children = [r for r in default_run.registrations if r.parent.endswith(f"::{ARCHIVE}")]
    assert len(archive_children) == 5, [r.name for r in archive_children]
    assert all(r.retain_on_delete for r in archive_children), [
        r.name for r in archive_children if not r.retain_on_delete
    ]
    # Neither holds a recording: the ingress account's events point at media ACS deletes anyway.
    for account in (RUNTIME, INGRESS):
        assert one(default_run.registrations, STORAGE_ACCOUNT, account).retain_on_delete is False
    # Deleting the group would delete the retained account with it.
    groups = [r for r in default_run.registrations if r.type_ == RESOURCE_GROUP]
    assert len(groups) == 1 and groups[0].retain_on_delete is True


def test_retain_archive_on_destroy_false_lets_destroy_delete_it() -> None:
    regs = run_program({"retainArchiveOnDestroy": False})
    archive_children = [r for r in regs if r.parent.endswith(f"::{ARCHIVE}")]
    assert archive_children
    assert not any(r.retain_on_delete for r in archive_children)
    groups = [r for r in regs if r.type_ == RESOURCE_GROUP]
    assert len(groups) == 1 and not groups[0].retain_on_delete
