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
    runtime = one(run.registrations, STORAGE_ACCOUNT, "acsrechost").outputs["id"]
    return {
        Scope.RUNTIME_ACCOUNT: runtime,
        Scope.ARCHIVE_ACCOUNT: archive,
        Scope.RECORDINGS_CONTAINER: f"{archive}/blobServices/default/containers/recordings",
        Scope.DEAD_LETTER_CONTAINER: f"{archive}/blobServices/default/containers/event-deadletter",
        Scope.EVENTS_QUEUE: f"{archive}/queueServices/default/queues/recording-events",
        Scope.POISON_QUEUE: f"{archive}/queueServices/default/queues/recording-events-poison",
        Scope.REGISTRY_TABLE: f"{archive}/tableServices/default/tables/recordings",
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
    assert len(gaps) == 2


def test_custom_roles_grant_exactly_what_their_scope_needs(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    definitions = {r.outputs["id"]: r for r in of_type(regs, ROLE_DEFINITION)}
    assert len(definitions) == 3
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


def test_built_in_roles_are_used_only_when_exact_or_documented() -> None:
    for caller in Caller:
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
    )
    names = {
        name
        for cls in classes
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_")
    }
    return frozenset(names - NO_REQUEST - {"from_connection_string"})


def _storage_calls(sources: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """SDK call (``name`` or ``name(tags=)``) -> places (``file:line``) that make it.

    ``sources`` are (file name, source text) pairs.
    """
    methods = _sdk_methods()
    found: dict[str, list[str]] = {}
    for where, source in sources:
        for node in ast.walk(ast.parse(source, filename=where)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name not in methods:
                continue
            if any(keyword.arg == "tags" for keyword in node.keywords):
                name = f"{name}(tags=)"
            found.setdefault(name, []).append(f"{where}:{node.lineno}")
    return found


def _function_code() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(FUNCTIONS_DIR)), path.read_text(encoding="utf-8"))
        for path in sorted(FUNCTIONS_DIR.rglob("*.py"))
    ]


def test_every_storage_call_in_the_function_code_is_in_the_table() -> None:
    calls = _storage_calls(_function_code())
    listed = {op.sdk_call for op in OPERATIONS if op.sdk_call}
    unlisted = {
        call: places
        for call, places in calls.items()
        if call not in listed and call not in LOCAL_ONLY_CALLS
    }
    assert unlisted == {}, "add these to infra/data_access.py OPERATIONS with their permissions"
    stale = listed - set(calls)
    assert stale == set(), "these table entries name calls the function code no longer makes"


def test_the_scan_finds_calls_the_table_lacks_and_tells_tags_apart() -> None:
    source = (
        "def erase(container, blob):\n"
        "    container.delete_blob('x')\n"
        "    blob.upload_blob(b'', tags={'kind': 'x'})\n"
        "    blob.upload_blob(b'')\n"
    )
    calls = _storage_calls([("probe.py", source)])
    assert calls == {
        "delete_blob": ["probe.py:2"],
        "upload_blob(tags=)": ["probe.py:3"],
        "upload_blob": ["probe.py:4"],
    }
    listed = {op.sdk_call for op in OPERATIONS}
    assert "delete_blob" not in listed and "upload_blob" not in listed
