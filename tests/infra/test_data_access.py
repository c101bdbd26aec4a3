"""Every storage call is covered by a role on a scope that contains it, and no custom role grants
more than the calls need.

Nothing local checks a role (Azurite signs with the account key), so this is where a grant that
Azure would refuse is caught: the table in infra/data_access.py says what each call needs (from
Microsoft's permission pages), infra/roles.py what each built-in role grants, and the program's
registrations what is assigned where.
"""

from __future__ import annotations

import ast
import copy
import inspect
from collections.abc import Iterable
from pathlib import Path

import pytest
from azure.data.tables import TableClient, TableServiceClient
from azure.eventgrid import EventGridPublisherClient
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient, QueueServiceClient

from infra import data_access, roles
from infra.data_access import OPERATIONS, Caller, Scope
from infra.roles import Permissions
from tests.infra.harness import ProgramRun, Registration, run_program_with_outputs
from tests.infra.queries import ROLE_ASSIGNMENT, ROLE_DEFINITION, STORAGE_ACCOUNT, of_type, one

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
#: SDK methods that build clients or read local state: no request, no permission.
NO_REQUEST = frozenset(
    {
        "close",
        "get_blob_client",
        "get_container_client",
        "get_queue_client",
        "get_table_client",
    }
)
#: Code run only by a person with the operations tools, under their own sign-in: its calls are
#: the operator's rows of the table, which the program grants to no identity.
OPERATOR_MODULES = frozenset(
    {
        "recording_pipeline/operations/replay_poison.py",
        "recording_pipeline/operations/participants.py",
    }
)
OPERATOR_FUNCTIONS = frozenset(
    {
        ("recording_pipeline/registry/archive_writes.py", "unindex_participants"),
        ("recording_pipeline/registry/archive_writes.py", "mark_erased"),
    }
)
#: Calls the function code makes only against Azurite (with a connection string), never with
#: the managed identity in Azure, and why.
LOCAL_ONLY_CALLS = {
    "create_table": "Registry.ensure_table runs only with ARCHIVE_STORAGE_CONNECTION_STRING",
}


def _principal(run: ProgramRun, caller: Caller) -> str:
    type_ = {
        Caller.FUNCTION_APP: "azure-native:web:WebApp",
        Caller.EVENT_GRID: "azure-native:eventgrid:SystemTopic",
    }[caller]
    return one(run.registrations, type_).outputs["identity"]["principalId"]


def _scope_ids(run: ProgramRun) -> dict[Scope, str]:
    archive = one(run.registrations, STORAGE_ACCOUNT, "acsrecarch").outputs["id"]
    ingress = one(run.registrations, STORAGE_ACCOUNT, "acsrecingr").outputs["id"]
    runtime = one(run.registrations, STORAGE_ACCOUNT, "acsrechost").outputs["id"]
    return {
        Scope.RUNTIME_ACCOUNT: runtime,
        Scope.RUNTIME_TABLES: runtime,
        Scope.ARCHIVE_ACCOUNT: archive,
        Scope.RECORDINGS_CONTAINER: f"{archive}/blobServices/default/containers/recordings",
        Scope.DEAD_LETTER_CONTAINER: f"{ingress}/blobServices/default/containers/event-deadletter",
        Scope.EVENTS_QUEUE: f"{ingress}/queueServices/default/queues/recording-events",
        Scope.POISON_QUEUE: f"{ingress}/queueServices/default/queues/recording-events-poison",
        Scope.REGISTRY_TABLE: f"{archive}/tableServices/default/tables/recordings",
        Scope.EVENTS_TOPIC: one(run.registrations, "azure-native:eventgrid:Topic").outputs["id"],
    }


def _contains(scope: str, resource: str) -> bool:
    """An assignment on ``scope`` applies to ``resource`` at or below it (ARM is case-blind)."""
    scope, resource = scope.lower().rstrip("/"), resource.lower().rstrip("/")
    return resource == scope or resource.startswith(scope + "/")


def _role_grants(registrations: list[Registration], definition_id: str) -> Permissions:
    guid = definition_id.rsplit("/", 1)[-1]
    if guid in roles.BY_GUID:
        return roles.BY_GUID[guid].grants
    custom = [
        r for r in of_type(registrations, ROLE_DEFINITION) if r.outputs["id"] == definition_id
    ]
    assert len(custom) == 1, f"role definition {definition_id} is neither built in nor registered"
    grants = custom[0].inputs["permissions"]
    return roles.permissions(
        [a for grant in grants for a in grant.get("actions") or []],
        [d for grant in grants for d in grant.get("dataActions") or []],
    )


def effective_grants(
    registrations: list[Registration], principal: str, resource: str
) -> Permissions:
    """Everything ``principal`` may do on ``resource``: every assignment on a containing scope."""
    total = roles.permissions()
    for assignment in of_type(registrations, ROLE_ASSIGNMENT):
        if assignment.inputs["principalId"] == principal and _contains(
            assignment.inputs["scope"], resource
        ):
            total = total | _role_grants(registrations, assignment.inputs["roleDefinitionId"])
    return total


def coverage_gaps(run: ProgramRun, registrations: list[Registration] | None = None) -> list[str]:
    """One line per operation whose needs the assigned roles do not cover."""
    regs = run.registrations if registrations is None else registrations
    scopes = _scope_ids(run)
    gaps = []
    for operation in OPERATIONS:
        if operation.caller not in data_access.PROGRAM_CALLERS:
            continue
        granted = effective_grants(regs, _principal(run, operation.caller), scopes[operation.scope])
        missing = data_access.uncovered(operation.needs, granted)
        if missing:
            gaps.append(
                f"{operation.caller.name} {operation.operation} on {operation.scope.value}: "
                f"missing {', '.join(missing)}"
            )
    return gaps


@pytest.fixture(scope="module")
def builtin_roles_run() -> ProgramRun:
    return run_program_with_outputs({"customRoles": False})


def test_every_operation_is_covered_on_its_scope(default_run: ProgramRun) -> None:
    assert coverage_gaps(default_run) == []


def test_every_operation_is_covered_with_built_in_roles_only(builtin_roles_run: ProgramRun) -> None:
    assert coverage_gaps(builtin_roles_run) == []


def test_the_check_fails_on_the_former_blob_data_contributor_grant(
    default_run: ProgramRun,
) -> None:
    """Before this table existed the archiver held Storage Blob Data Contributor on recordings:
    every chunk commit and manifest write would have been refused in Azure."""
    registrations = copy.deepcopy(default_run.registrations)
    recordings = one(registrations, ROLE_ASSIGNMENT, "acsrec-func-recordings-blob")
    recordings.inputs["roleDefinitionId"] = roles.STORAGE_BLOB_DATA_CONTRIBUTOR.definition_id(
        roles.subscription_of(recordings.inputs["scope"])
    )
    tags = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write"
    assert coverage_gaps(default_run, registrations) == [
        f"FUNCTION_APP Put Block List (x-ms-tags) on recordings container: missing {tags}",
        f"FUNCTION_APP Put Blob (x-ms-tags) on recordings container: missing {tags}",
    ]


def test_a_grant_on_a_sibling_scope_does_not_count(default_run: ProgramRun) -> None:
    registrations = copy.deepcopy(default_run.registrations)
    poison = one(registrations, ROLE_ASSIGNMENT, "acsrec-func-poison-queue")
    poison.inputs["scope"] = poison.inputs["scope"].replace("-poison", "-other")
    gaps = coverage_gaps(default_run, registrations)
    assert gaps and all("recording-events-poison queue" in gap for gap in gaps)
    # Put Message by the archiver and by the host; the reconciler's Get, Delete, Update Message
    assert len(gaps) == 5


def test_custom_roles_grant_exactly_what_their_scope_needs(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    definitions = {r.outputs["id"]: r for r in of_type(regs, ROLE_DEFINITION)}
    assert len(definitions) == 5
    scopes = {value: key for key, value in _scope_ids(default_run).items()}
    group = one(regs, "azure-native:resources:ResourceGroup").outputs["id"]
    app_name = one(regs, "azure-native:web:WebApp").outputs["name"]
    for assignment in of_type(regs, ROLE_ASSIGNMENT):
        definition = definitions.get(assignment.inputs["roleDefinitionId"])
        if definition is None:
            continue
        scope = scopes[assignment.inputs["scope"]]
        granted = _role_grants(regs, assignment.inputs["roleDefinitionId"])
        assert granted == data_access.needs(Caller.FUNCTION_APP, scope), assignment.name
        assert definition.inputs["assignableScopes"] == [group], definition.name
        assert definition.inputs["scope"] == group, definition.name
        assert definition.inputs["roleType"] == "CustomRole"
        assert definition.inputs["roleName"].endswith(f"({app_name})"), definition.name


def test_the_reconciler_may_mark_dead_letters_but_never_rewrite_or_delete_them(
    default_run: ProgramRun,
) -> None:
    """Least privilege on the two scopes the reconciler adds: dead letters are read and tagged
    (the content stays Event Grid's evidence), poison messages taken, released or removed one by
    one (never the whole queue cleared, never the queue itself touched)."""
    regs = default_run.registrations
    function = _principal(default_run, Caller.FUNCTION_APP)
    scopes = _scope_ids(default_run)
    blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    queues = "Microsoft.Storage/storageAccounts/queueServices/queues"
    dead_letters = effective_grants(regs, function, scopes[Scope.DEAD_LETTER_CONTAINER])
    poison = effective_grants(regs, function, scopes[Scope.POISON_QUEUE])

    assert all(
        dead_letters.grants_data_action(f"{blobs}/{action}")
        for action in ("read", "tags/read", "tags/write")
    )
    assert not any(
        dead_letters.grants_data_action(f"{blobs}/{action}")
        for action in ("write", "delete", "add/action", "move/action")
    )
    assert all(
        poison.grants_data_action(f"{queues}/messages/{action}")
        for action in ("add/action", "process/action", "write")
    )
    assert not poison.grants_data_action(f"{queues}/messages/delete")  # Clear Messages
    assert not poison.grants_data_action(f"{queues}/messages/read")  # Peek: not needed
    assert not any(poison.grants_action(f"{queues}/{action}") for action in ("write", "delete"))


def test_put_message_is_also_granted_by_put_or_update() -> None:
    """Microsoft lists Put Message under messages/add/action and under messages/write."""
    put = "Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action"
    assert roles.STORAGE_QUEUE_DATA_CONTRIBUTOR.grants.grants_data_action(put)
    assert roles.STORAGE_QUEUE_DATA_MESSAGE_SENDER.grants.grants_data_action(put)
    assert not roles.STORAGE_QUEUE_DATA_MESSAGE_PROCESSOR.grants.grants_data_action(put)
    assert not roles.STORAGE_QUEUE_DATA_READER.grants.grants_data_action(put)


def test_built_in_roles_are_used_only_when_exact_or_documented() -> None:
    for caller in data_access.PROGRAM_CALLERS:
        for scope, role in data_access.grant_plan(caller, custom_roles=True).items():
            if isinstance(role, roles.BuiltInRole):
                documented = data_access.DOCUMENTED_ROLES.get((caller, scope))
                assert role.grants == data_access.needs(caller, scope) or role is documented, (
                    caller,
                    scope,
                    role.name,
                )


def test_calls_that_send_index_tags_need_the_tags_write_permission() -> None:
    """Put Blob and Put Block List with x-ms-tags are authorized as Set Blob Tags too
    (learn.microsoft.com/rest/api/storageservices/put-blob, "Permissions")."""
    tagged = [op for op in OPERATIONS if op.sdk_call and op.sdk_call.endswith("(tags=)")]
    assert tagged
    for operation in tagged:
        assert operation.needs.grants_data_action(
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write"
        ), operation.operation


def _sdk_methods() -> frozenset[str]:
    classes = (
        BlobServiceClient,
        ContainerClient,
        BlobClient,
        QueueServiceClient,
        QueueClient,
        TableServiceClient,
        TableClient,
        EventGridPublisherClient,
    )
    names = {
        name
        for cls in classes
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_")
    }
    return frozenset(names - NO_REQUEST - {"from_connection_string"})


class _CallFinder(ast.NodeVisitor):
    """SDK storage calls with the function (or method) they are made in."""

    def __init__(self, methods: frozenset[str]) -> None:
        self.methods = methods
        self.scope: list[str] = []
        self.calls: list[tuple[str, str, int]] = []  # (call, enclosing function, line)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function  # noqa: N815 - ast naming

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr in self.methods:
            name = node.func.attr
            if any(keyword.arg == "tags" for keyword in node.keywords):
                name = f"{name}(tags=)"
            self.calls.append((name, self.scope[-1] if self.scope else "", node.lineno))
        self.generic_visit(node)


def _caller_of(where: str, function: str) -> Caller:
    if where in OPERATOR_MODULES or (where, function) in OPERATOR_FUNCTIONS:
        return Caller.OPERATOR
    return Caller.FUNCTION_APP


def _storage_calls(sources: Iterable[tuple[str, str]]) -> dict[tuple[Caller, str], list[str]]:
    """(caller, SDK call ``name`` or ``name(tags=)``) -> places (``file:line``) that make it.

    ``sources`` are (file name, source text) pairs; a call belongs to the operator when its
    module or function is operator-only, and to the Function App otherwise.
    """
    found: dict[tuple[Caller, str], list[str]] = {}
    for where, source in sources:
        finder = _CallFinder(_sdk_methods())
        finder.visit(ast.parse(source, filename=where))
        for name, function, line in finder.calls:
            found.setdefault((_caller_of(where, function), name), []).append(f"{where}:{line}")
    return found


def _function_code() -> list[tuple[str, str]]:
    return [
        (path.relative_to(FUNCTIONS_DIR).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(FUNCTIONS_DIR.rglob("*.py"))
    ]


def test_every_storage_call_in_the_function_code_is_in_the_table() -> None:
    calls = _storage_calls(_function_code())
    listed = {(op.caller, op.sdk_call) for op in OPERATIONS if op.sdk_call}
    unlisted = {
        call: places
        for call, places in calls.items()
        if call not in listed and call[1] not in LOCAL_ONLY_CALLS
    }
    assert unlisted == {}, "add these to infra/data_access.py OPERATIONS with their permissions"
    stale = listed - set(calls)
    assert stale == set(), "these table entries name calls the function code no longer makes"


def test_operator_only_functions_are_not_called_by_the_function_app() -> None:
    """An operator-only function's calls are not granted to the app: the app must not call it."""
    names = {function for _, function in OPERATOR_FUNCTIONS}
    offenders = []
    for where, source in _function_code():
        if where in OPERATOR_MODULES:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr in names:
                offenders.append(f"{where}:{node.lineno} {node.attr}")
    assert offenders == []


def test_the_scan_finds_calls_the_table_lacks_and_tells_tags_and_callers_apart() -> None:
    source = (
        "class Store:\n"
        "    def unindex_participants(self, table):\n"
        "        table.delete_entity('p', 'r')\n"
        "def erase(container, blob):\n"
        "    container.delete_blob('x')\n"
        "    blob.upload_blob(b'', tags={'kind': 'x'})\n"
        "    blob.upload_blob(b'')\n"
    )
    calls = _storage_calls([("recording_pipeline/registry/archive_writes.py", source)])
    where = "recording_pipeline/registry/archive_writes.py"
    assert calls == {
        (Caller.OPERATOR, "delete_entity"): [f"{where}:3"],
        (Caller.FUNCTION_APP, "delete_blob"): [f"{where}:5"],
        (Caller.FUNCTION_APP, "upload_blob(tags=)"): [f"{where}:6"],
        (Caller.FUNCTION_APP, "upload_blob"): [f"{where}:7"],
    }
    listed = {(op.caller, op.sdk_call) for op in OPERATIONS}
    assert (Caller.FUNCTION_APP, "delete_blob") not in listed
    assert (Caller.FUNCTION_APP, "upload_blob") not in listed
