"""Every data-plane call made with a managed identity (Storage, and the Event Grid topic the
recordings' CloudEvents are published to), the permissions it needs, and the grants
the program derives from them.

Azurite signs with the account key and never checks a role, and Pulumi mocks do not either, so a
missing permission shows only in Azure, as a 403 on the first recording. This table is therefore
the single source of the storage grants: :func:`grant_plan` turns it into one role per
(identity, scope), and the tests check that (1) every SDK call in ``functions/`` is listed here,
(2) every listed operation is covered by what the program assigns on a scope that contains it,
(3) no custom role grants an action nothing here needs.

Permissions per operation come from Microsoft's documentation: "Actions and attributes for
authorization conditions" for Blob and Queue Storage
(learn.microsoft.com/azure/storage/blobs/storage-auth-abac-attributes,
learn.microsoft.com/azure/storage/queues/queues-auth-abac-attributes), "Put Blob"
(``x-ms-tags`` needs ``blobs/tags/write``: learn.microsoft.com/rest/api/storageservices/put-blob),
"Azure permissions for Storage" (table entity actions), and for the Functions host "Connecting
to host storage with an identity" and the queue extension's source (it releases a failed
message with Update Message and moves a poison message with Put Message).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from infra import roles
from infra.roles import BuiltInRole, CustomRoleSpec, Permissions

_BLOB = "Microsoft.Storage/storageAccounts/blobServices"
_BLOBS = f"{_BLOB}/containers/blobs"
_QUEUES = "Microsoft.Storage/storageAccounts/queueServices/queues"
_ENTITIES = "Microsoft.Storage/storageAccounts/tableServices/tables/entities"
_EVENT_SEND = "Microsoft.EventGrid/events/send/action"


class Scope(Enum):
    """Where an operation runs; the program assigns each grant on exactly one of these."""

    RUNTIME_ACCOUNT = "runtime storage account"
    RUNTIME_TABLES = "runtime storage account's tables"
    ARCHIVE_ACCOUNT = "archive storage account"
    RECORDINGS_CONTAINER = "recordings container"
    DEAD_LETTER_CONTAINER = "event-deadletter container (ingress account)"
    EVENTS_QUEUE = "recording-events queue (ingress account)"
    POISON_QUEUE = "recording-events-poison queue (ingress account)"
    REGISTRY_TABLE = "recordings table"
    EVENTS_TOPIC = "recording-events custom topic (publishEvents)"


#: Scopes that exist only when a feature is on: :func:`grant` skips them when the program does
#: not pass their id (``publishEvents: false`` creates no topic).
OPTIONAL_SCOPES = frozenset({Scope.EVENTS_TOPIC})


class Caller(Enum):
    """Whose identity signs the call."""

    FUNCTION_APP = "Function App (its code and the Functions host)"
    EVENT_GRID = "Event Grid system topic"
    OPERATOR = "a person running the operations tools, with their own sign-in"


#: The identities the program creates and grants roles to (an operator brings their own).
PROGRAM_CALLERS = (Caller.FUNCTION_APP, Caller.EVENT_GRID)


@dataclass(frozen=True)
class DataOperation:
    """One Storage REST operation an identity performs on one scope, and why."""

    caller: Caller
    scope: Scope
    operation: str
    """Storage REST operation name, as Microsoft's permission pages name it."""
    needs: Permissions
    why: str
    sdk_call: str | None = None
    """Python SDK method the function code calls (``tags=`` when it sends index tags); None for
    calls the Functions host or Azure makes."""


def _op(
    caller: Caller,
    scope: Scope,
    operation: str,
    *,
    why: str,
    sdk_call: str | None = None,
    actions: Iterable[str] = (),
    data_actions: Iterable[str] = (),
) -> DataOperation:
    return DataOperation(
        caller, scope, operation, roles.permissions(actions, data_actions), why, sdk_call
    )


_F, _EG, _OP = Caller.FUNCTION_APP, Caller.EVENT_GRID, Caller.OPERATOR

OPERATIONS: tuple[DataOperation, ...] = (
    # --- recordings container: the archiver writes, the API reads ------------------------------
    _op(_F, Scope.RECORDINGS_CONTAINER, "Get Blob Properties", sdk_call="get_blob_properties",
        data_actions=[f"{_BLOBS}/read"],
        why="archiver: is a chunk already complete; API: size, MD5 and tier of a linked file"),
    _op(_F, Scope.RECORDINGS_CONTAINER, "Get Block List", sdk_call="get_block_list",
        data_actions=[f"{_BLOBS}/read"],
        why="archiver: resume a chunk from the blocks staged before a crash"),
    _op(_F, Scope.RECORDINGS_CONTAINER, "Put Block", sdk_call="stage_block",
        data_actions=[f"{_BLOBS}/write"], why="archiver: stage each block of a chunk"),
    _op(_F, Scope.RECORDINGS_CONTAINER, "Put Block List (x-ms-tags)",
        sdk_call="commit_block_list(tags=)",
        data_actions=[f"{_BLOBS}/write", f"{_BLOBS}/tags/write"],
        why="archiver: commit a copied file; media carries the tags lifecycle rules match"),
    _op(_F, Scope.RECORDINGS_CONTAINER, "Put Blob (x-ms-tags)", sdk_call="upload_blob(tags=)",
        data_actions=[f"{_BLOBS}/write", f"{_BLOBS}/tags/write"],
        why="archiver: write the manifest with its index tags"),
    _op(_F, Scope.RECORDINGS_CONTAINER, "Get Blob", sdk_call="download_blob",
        data_actions=[f"{_BLOBS}/read"],
        why="archiver: read a chunk's metadata back, finish from a manifest; API: serve it"),
    # --- archive account: download links ------------------------------------------------------
    _op(_F, Scope.ARCHIVE_ACCOUNT, "Get User Delegation Key", sdk_call="get_user_delegation_key",
        actions=[f"{_BLOB}/generateUserDelegationKey/action"],
        why="API: sign read-only download links (they grant no more than the signer's roles)"),
    # --- registry table -----------------------------------------------------------------------
    _op(_F, Scope.REGISTRY_TABLE, "Query Entities", sdk_call="query_entities",
        data_actions=[f"{_ENTITIES}/read"],
        why="API: list recordings; reconciler: its index partitions, the sweep"),
    _op(_F, Scope.REGISTRY_TABLE, "Query Entities (one entity)", sdk_call="get_entity",
        data_actions=[f"{_ENTITIES}/read"],
        why="API, archiver: read a recording, an idempotency key, a poison marker"),
    _op(_F, Scope.REGISTRY_TABLE, "Insert Entity", sdk_call="create_entity",
        data_actions=[f"{_ENTITIES}/add/action"],
        why="API: first row of a recording; archiver: participant index, poison marker"),
    _op(_F, Scope.REGISTRY_TABLE, "Update Entity / Merge Entity", sdk_call="update_entity",
        data_actions=[f"{_ENTITIES}/update/action"],
        why="API, archiver: ETag-checked state and archive changes"),
    _op(_F, Scope.REGISTRY_TABLE, "Insert Or Merge Entity", sdk_call="upsert_entity",
        data_actions=[f"{_ENTITIES}/write"],
        why="API: idempotency completion, stop index; archiver: archive status, participant "
            "index, pending ACS deletion; reconciler: index repair, replay counts, dead-letter "
            "marks a tag could not hold"),
    _op(_F, Scope.REGISTRY_TABLE, "Delete Entity", sdk_call="delete_entity",
        data_actions=[f"{_ENTITIES}/delete"],
        why="archiver: its pending-ACS-deletion row once done; reconciler: index rows it closed, "
            "marks of dead letters that are gone"),
    # --- poison queue -------------------------------------------------------------------------
    _op(_F, Scope.POISON_QUEUE, "Put Message", sdk_call="send_message",
        data_actions=[f"{_QUEUES}/messages/add/action"],
        why="archiver: poison an event that can never succeed, with its reason"),
    _op(_F, Scope.POISON_QUEUE, "Put Message (host)",
        data_actions=[f"{_QUEUES}/messages/add/action"],
        why="Functions host: move a message after its last failed attempt (maxDequeueCount)"),
    _op(_F, Scope.POISON_QUEUE, "Get Messages", sdk_call="receive_messages",
        data_actions=[f"{_QUEUES}/messages/process/action"],
        why="reconciler: take poisoned events to decide about (a lease, not a removal)"),
    _op(_F, Scope.POISON_QUEUE, "Delete Message", sdk_call="delete_message",
        data_actions=[f"{_QUEUES}/messages/process/action"],
        why="reconciler: remove an event it replayed or whose recording is done"),
    _op(_F, Scope.POISON_QUEUE, "Update Message", sdk_call="update_message",
        data_actions=[f"{_QUEUES}/messages/write"],
        why="reconciler: make the events it leaves visible again"),
    # --- dead-letter container: the reconciler reads and marks, never rewrites ----------------
    _op(_F, Scope.DEAD_LETTER_CONTAINER, "List Blobs (include=tags)", sdk_call="list_blobs",
        data_actions=[f"{_BLOBS}/read", f"{_BLOBS}/tags/read"],
        why="reconciler: find dead letters not yet re-enqueued (their tags say which)"),
    _op(_F, Scope.DEAD_LETTER_CONTAINER, "Get Blob", sdk_call="download_blob",
        data_actions=[f"{_BLOBS}/read"], why="reconciler: read the dead-lettered events"),
    _op(_F, Scope.DEAD_LETTER_CONTAINER, "Set Blob Tags", sdk_call="set_blob_tags",
        data_actions=[f"{_BLOBS}/tags/write"],
        why="reconciler: mark a dead letter re-enqueued (a tag: the content stays Event Grid's)"),
    # --- events queue: the queue trigger and the scale controller ------------------------------
    _op(_F, Scope.EVENTS_QUEUE, "Get Messages", data_actions=[f"{_QUEUES}/messages/process/action"],
        why="Functions host: the archiver's queue trigger dequeues events"),
    _op(_F, Scope.EVENTS_QUEUE, "Delete Message",
        data_actions=[f"{_QUEUES}/messages/process/action"],
        why="Functions host: delete an event the archiver handled"),
    _op(_F, Scope.EVENTS_QUEUE, "Update Message", data_actions=[f"{_QUEUES}/messages/write"],
        why="Functions host: renew an in-flight message's lease, release a failed one"),
    _op(_F, Scope.EVENTS_QUEUE, "Peek Messages", data_actions=[f"{_QUEUES}/messages/read"],
        why="Functions host scale monitor: age of the oldest message"),
    _op(_F, Scope.EVENTS_QUEUE, "Get Queue Metadata", actions=[f"{_QUEUES}/read"],
        why="Functions host scale monitor: queue length, for target-based scaling"),
    _op(_F, Scope.EVENTS_QUEUE, "Put Message", sdk_call="send_message",
        data_actions=[f"{_QUEUES}/messages/add/action"],
        why="reconciler: put a dead-lettered or outage-poisoned event back for the archiver"),
    # --- runtime account: the Functions host and the Flex deployment --------------------------
    _op(_F, Scope.RUNTIME_ACCOUNT, "Create Container, Get/Put/Delete Blob, Lease Blob",
        actions=[f"{_BLOB}/containers/read", f"{_BLOB}/containers/write"],
        data_actions=[f"{_BLOBS}/read", f"{_BLOBS}/write", f"{_BLOBS}/delete",
                      f"{_BLOBS}/add/action"],
        why="Functions host: host keys, singleton locks, the deployment package (Microsoft "
            "documents Storage Blob Data Owner for identity-based AzureWebJobsStorage)"),
    _op(_F, Scope.RUNTIME_TABLES, "Create Table, Insert Entity, Insert Or Merge Entity",
        actions=["Microsoft.Storage/storageAccounts/tableServices/tables/write"],
        data_actions=[f"{_ENTITIES}/add/action", f"{_ENTITIES}/write"],
        why="Functions host: diagnostic events, kept in tables of AzureWebJobsStorage (Microsoft "
            "documents Storage Table Data Contributor for them)"),
    # --- Event Grid's own identity ------------------------------------------------------------
    _op(_EG, Scope.EVENTS_QUEUE, "Put Message", data_actions=[f"{_QUEUES}/messages/add/action"],
        why="Event Grid delivers RecordingFileStatusUpdated to the queue"),
    _op(_EG, Scope.DEAD_LETTER_CONTAINER, "Put Blob / Append Block",
        data_actions=[f"{_BLOBS}/write", f"{_BLOBS}/add/action"],
        why="Event Grid dead-letters an event it could not deliver"),
    # --- the recordings' CloudEvents (recording_pipeline/events_out/) ---------------------------
    _op(_F, Scope.EVENTS_TOPIC, "Publish Events", sdk_call="send", data_actions=[_EVENT_SEND],
        why="archiver, reconciler: announce archived, lost, failed, overdue recordings (and "
            "publish the erasures and anything else left pending)"),
    # --- operations tools (recording_pipeline/operations/), run by a person ---------------------
    _op(_OP, Scope.POISON_QUEUE, "Peek Messages", sdk_call="peek_messages",
        data_actions=[f"{_QUEUES}/messages/read"], why="replay_poison: list poisoned events"),
    _op(_OP, Scope.POISON_QUEUE, "Get Messages", sdk_call="receive_messages",
        data_actions=[f"{_QUEUES}/messages/process/action"],
        why="replay_poison: take the events to replay"),
    _op(_OP, Scope.POISON_QUEUE, "Delete Message", sdk_call="delete_message",
        data_actions=[f"{_QUEUES}/messages/process/action"],
        why="replay_poison: remove a replayed event"),
    _op(_OP, Scope.POISON_QUEUE, "Update Message", sdk_call="update_message",
        data_actions=[f"{_QUEUES}/messages/write"],
        why="replay_poison: make skipped events visible again"),
    _op(_OP, Scope.EVENTS_QUEUE, "Put Message", sdk_call="send_message",
        data_actions=[f"{_QUEUES}/messages/add/action"],
        why="replay_poison: put an event back for the archiver"),
    _op(_OP, Scope.REGISTRY_TABLE, "Query Entities", sdk_call="query_entities",
        data_actions=[f"{_ENTITIES}/read"], why="export_participant: find a participant's rows"),
    _op(_OP, Scope.REGISTRY_TABLE, "Delete Entity", sdk_call="delete_entity",
        data_actions=[f"{_ENTITIES}/delete"], why="export_participant erase: the index rows"),
    _op(_OP, Scope.REGISTRY_TABLE, "Insert Or Merge Entity", sdk_call="upsert_entity",
        data_actions=[f"{_ENTITIES}/write"], why="export_participant erase: mark it erased"),
    _op(_OP, Scope.RECORDINGS_CONTAINER, "Get Blob", sdk_call="download_blob",
        data_actions=[f"{_BLOBS}/read"], why="export_participant: manifests and files"),
    _op(_OP, Scope.RECORDINGS_CONTAINER, "Delete Blob", sdk_call="delete_blob",
        data_actions=[f"{_BLOBS}/delete"], why="export_participant erase: the files"),
    # The erase announces itself through events_out (shared with the app, so not scanned as
    # the operator's): a pending-event row, the recording read back, the event published.
    _op(_OP, Scope.REGISTRY_TABLE, "Query Entities (one entity)",
        data_actions=[f"{_ENTITIES}/read"],
        why="export_participant erase: read the recording back to announce it"),
    _op(_OP, Scope.EVENTS_TOPIC, "Publish Events", data_actions=[_EVENT_SEND],
        why="export_participant erase: RecordingErased (optional: without the role the publish "
            "fails, is logged, and the reconciler publishes it with the app's identity)"),
)  # fmt: skip

#: Scopes where the role is Microsoft's documented requirement rather than derived from calls
#: this project makes: the Functions host's own storage, and Event Grid's dead-letter writer.
DOCUMENTED_ROLES: dict[tuple[Caller, Scope], BuiltInRole] = {
    (Caller.FUNCTION_APP, Scope.RUNTIME_ACCOUNT): roles.STORAGE_BLOB_DATA_OWNER,
    (Caller.FUNCTION_APP, Scope.RUNTIME_TABLES): roles.STORAGE_TABLE_DATA_CONTRIBUTOR,
    (Caller.EVENT_GRID, Scope.DEAD_LETTER_CONTAINER): roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
    (Caller.FUNCTION_APP, Scope.EVENTS_TOPIC): roles.EVENTGRID_DATA_SENDER,
}
#: Built-in roles a grant may use when no custom role is wanted, least first.
_FALLBACK_ROLES = (
    roles.STORAGE_BLOB_DELEGATOR,
    roles.STORAGE_QUEUE_DATA_MESSAGE_SENDER,
    roles.STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR,
    roles.STORAGE_QUEUE_DATA_READER,
    roles.STORAGE_QUEUE_DATA_CONTRIBUTOR,
    roles.STORAGE_TABLE_DATA_CONTRIBUTOR,
    roles.STORAGE_BLOB_DATA_CONTRIBUTOR,
    roles.STORAGE_BLOB_DATA_OWNER,
    roles.EVENTGRID_DATA_SENDER,
)


#: Human names of the custom roles, per scope (role names are unique per tenant: the program
#: appends the Function App's name).
CUSTOM_ROLE_TITLES = {
    Scope.RECORDINGS_CONTAINER: "Recordings archive writer",
    Scope.EVENTS_QUEUE: "Recording events queue consumer",
    Scope.REGISTRY_TABLE: "Recording registry writer",
    Scope.POISON_QUEUE: "Recording poison queue handler",
    Scope.DEAD_LETTER_CONTAINER: "Dead-letter reconciler",
}


def needs(caller: Caller, scope: Scope) -> Permissions:
    """Everything ``caller`` needs on ``scope``: the union of its operations there."""
    total = roles.permissions()
    for operation in OPERATIONS:
        if operation.caller is caller and operation.scope is scope:
            total = total | operation.needs
    return total


def scopes_of(caller: Caller) -> list[Scope]:
    """The scopes ``caller`` works on, in table order."""
    return list(dict.fromkeys(op.scope for op in OPERATIONS if op.caller is caller))


def grant_plan(caller: Caller, *, custom_roles: bool) -> dict[Scope, BuiltInRole | CustomRoleSpec]:
    """The role to assign on each scope ``caller`` works on.

    A built-in role that grants exactly what is needed is used as is; Microsoft's documented
    role where the caller is Azure's own code; otherwise a custom role with exactly the needed
    permissions, or (``custom_roles=False``, for deployers who may not create role definitions)
    the least built-in role that covers them.
    """
    plan: dict[Scope, BuiltInRole | CustomRoleSpec] = {}
    for scope in scopes_of(caller):
        wanted = needs(caller, scope)
        exact = next((r for r in roles.ALL_ROLES if r.grants == wanted), None)
        documented = DOCUMENTED_ROLES.get((caller, scope))
        if exact is not None:
            plan[scope] = exact
        elif documented is not None:
            plan[scope] = documented
        elif custom_roles:
            plan[scope] = CustomRoleSpec(CUSTOM_ROLE_TITLES[scope], wanted)
        else:
            plan[scope] = _least_covering(wanted)
    return plan


def _least_covering(wanted: Permissions) -> BuiltInRole:
    for role in _FALLBACK_ROLES:
        if not uncovered(wanted, role.grants):
            return role
    raise LookupError(f"no built-in role covers {wanted}")


def uncovered(wanted: Permissions, granted: Permissions) -> list[str]:
    """The actions and data actions of ``wanted`` that ``granted`` does not cover."""
    missing = [a for a in sorted(wanted.actions) if not granted.grants_action(a)]
    missing += [d for d in sorted(wanted.data_actions) if not granted.grants_data_action(d)]
    return missing


#: Logical name suffix of each grant (kept stable: renaming one would replace the assignment).
ASSIGNMENT_SUFFIX = {
    (Caller.FUNCTION_APP, Scope.RUNTIME_ACCOUNT): "runtime-blob",
    (Caller.FUNCTION_APP, Scope.RUNTIME_TABLES): "runtime-table",
    (Caller.FUNCTION_APP, Scope.RECORDINGS_CONTAINER): "recordings-blob",
    (Caller.FUNCTION_APP, Scope.ARCHIVE_ACCOUNT): "archive-delegator",
    (Caller.FUNCTION_APP, Scope.EVENTS_QUEUE): "events-queue",
    (Caller.FUNCTION_APP, Scope.POISON_QUEUE): "poison-queue",
    (Caller.FUNCTION_APP, Scope.REGISTRY_TABLE): "registry-table",
    (Caller.FUNCTION_APP, Scope.DEAD_LETTER_CONTAINER): "deadletter-reconciler",
    (Caller.FUNCTION_APP, Scope.EVENTS_TOPIC): "events-topic-sender",
    (Caller.EVENT_GRID, Scope.EVENTS_QUEUE): "queue-sender",
    (Caller.EVENT_GRID, Scope.DEAD_LETTER_CONTAINER): "deadletter-writer",
}


def grant(
    prefix: str,
    caller: Caller,
    scope_ids: Mapping[Scope, Any],
    principal_id: Any,
    parent: Any,
    *,
    custom_roles: bool,
    owner_name: Any,
    propagation_wait_seconds: int = 0,
) -> list[Any]:
    """Register the role definitions and assignments :func:`grant_plan` asks for.

    ``scope_ids`` maps every scope ``caller`` works on to its ARM id (an optional scope left out
    is not granted: its resource does not exist); ``owner_name`` (the
    identity's resource name) makes custom role names unique in the tenant. A new custom role
    definition can be refused by an assignment made right after it (``RoleDefinitionDoesNotExist``
    while the definition replicates), so assignments of custom roles wait
    ``propagation_wait_seconds`` after the definitions on the first deployment.
    """
    import pulumi

    from infra.propagation import RolePropagationWait

    plan = {
        scope: role
        for scope, role in grant_plan(caller, custom_roles=custom_roles).items()
        if scope in scope_ids or scope not in OPTIONAL_SCOPES
    }
    definitions: dict[Scope, Any] = {
        scope: roles.define_custom_role(
            f"{prefix}-{ASSIGNMENT_SUFFIX[(caller, scope)]}-role",
            role,
            pulumi.Output.from_input(scope_ids[scope]).apply(roles.resource_group_of),
            owner_name,
            parent,
        )
        for scope, role in plan.items()
        if isinstance(role, CustomRoleSpec)
    }
    settled: list[Any] = list(definitions.values())
    if definitions and propagation_wait_seconds > 0:
        settled.append(
            RolePropagationWait(
                f"{prefix}-role-definitions-settled",
                grants=list(definitions.values()),
                seconds=propagation_wait_seconds,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    assignments = [
        roles.assign_role(
            f"{prefix}-{ASSIGNMENT_SUFFIX[(caller, scope)]}",
            definitions.get(scope, role),
            principal_id,
            scope_ids[scope],
            parent,
            depends_on=settled if scope in definitions else (),
        )
        for scope, role in plan.items()
    ]
    return [*definitions.values(), *assignments]
