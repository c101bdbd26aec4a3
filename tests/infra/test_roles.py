"""Role assignments: who gets which built-in role, on which (smallest) scope."""

from __future__ import annotations

from infra import roles
from tests.infra.harness import ProgramRun, run_program_with_outputs
from tests.infra.queries import ROLE_ASSIGNMENT, ROLE_DEFINITION, STORAGE_ACCOUNT, of_type, one


def _identity(run: ProgramRun, type_: str) -> str:
    return one(run.registrations, type_).outputs["identity"]["principalId"]


def _custom_role_id(run: ProgramRun, name: str) -> str:
    return one(run.registrations, ROLE_DEFINITION, name).outputs["id"].rsplit("/", 1)[-1]


def _expected(run: ProgramRun) -> dict[str, tuple[str, str, str]]:
    """name -> (principal, role GUID, scope id) the program must register."""
    regs = run.registrations
    function = _identity(run, "azure-native:web:WebApp")
    topic = _identity(run, "azure-native:eventgrid:SystemTopic")
    archive_id = one(regs, STORAGE_ACCOUNT, "acsrecarch").outputs["id"]
    ingress_id = one(regs, STORAGE_ACCOUNT, "acsrecingr").outputs["id"]
    runtime_id = one(regs, STORAGE_ACCOUNT, "acsrechost").outputs["id"]
    acs_id = one(regs, "azure-native:communication:CommunicationService").outputs["id"]
    insights_id = one(regs, "azure-native:applicationinsights:Component").outputs["id"]
    events_topic_id = one(regs, "azure-native:eventgrid:Topic").outputs["id"]
    # Everything Event Grid writes lives in the ingress account, and its grants with it.
    queues = f"{ingress_id}/queueServices/default/queues"
    dead_letters = f"{ingress_id}/blobServices/default/containers/event-deadletter"
    recordings = f"{archive_id}/blobServices/default/containers/recordings"
    return {
        "acsrec-func-runtime-blob": (function, roles.STORAGE_BLOB_DATA_OWNER.guid, runtime_id),
        "acsrec-func-runtime-table": (
            function, roles.STORAGE_TABLE_DATA_CONTRIBUTOR.guid, runtime_id
        ),
        "acsrec-func-recordings-blob": (
            function, _custom_role_id(run, "acsrec-func-recordings-blob-role"),
            recordings,
        ),
        "acsrec-func-archive-delegator": (
            function, roles.STORAGE_BLOB_DELEGATOR.guid, archive_id
        ),
        "acsrec-func-events-queue": (
            function, _custom_role_id(run, "acsrec-func-events-queue-role"),
            f"{queues}/recording-events",
        ),
        "acsrec-func-poison-queue": (
            function, _custom_role_id(run, "acsrec-func-poison-queue-role"),
            f"{queues}/recording-events-poison",
        ),
        "acsrec-func-deadletter-reconciler": (
            function, _custom_role_id(run, "acsrec-func-deadletter-reconciler-role"),
            dead_letters,
        ),
        "acsrec-func-registry-table": (
            function,
            _custom_role_id(run, "acsrec-func-registry-table-role"),
            f"{archive_id}/tableServices/default/tables/recordings",
        ),
        "acsrec-func-acs": (function, roles.COMMUNICATION_AND_EMAIL_SERVICE_OWNER.guid, acs_id),
        "acsrec-func-telemetry": (function, roles.MONITORING_METRICS_PUBLISHER.guid, insights_id),
        "acsrec-func-events-topic-sender": (
            function, roles.EVENTGRID_DATA_SENDER.guid, events_topic_id
        ),
        "acsrec-events-queue-sender": (
            topic, roles.STORAGE_QUEUE_DATA_MESSAGE_SENDER.guid, f"{queues}/recording-events"
        ),
        "acsrec-events-deadletter-writer": (
            topic, roles.STORAGE_BLOB_DATA_CONTRIBUTOR.guid, dead_letters
        ),
    }  # fmt: skip


def test_each_identity_gets_exactly_the_expected_roles_on_the_smallest_scope(
    default_run: ProgramRun,
) -> None:
    actual = {
        r.name: (
            r.inputs["principalId"],
            r.inputs["roleDefinitionId"].rsplit("/", 1)[-1],
            r.inputs["scope"],
        )
        for r in of_type(default_run.registrations, ROLE_ASSIGNMENT)
    }
    assert actual == _expected(default_run)


def test_every_assignment_is_a_service_principal_with_a_full_definition_id(
    default_run: ProgramRun,
) -> None:
    assignments = of_type(default_run.registrations, ROLE_ASSIGNMENT)
    assert assignments
    for assignment in assignments:
        assert assignment.inputs["principalType"] == "ServicePrincipal", assignment.name
        subscription = "/".join(assignment.inputs["scope"].split("/")[:3])
        assert assignment.inputs["roleDefinitionId"].startswith(
            f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/"
        ), assignment.name


def test_role_table_has_unique_guids_and_names() -> None:
    assert len({r.guid for r in roles.ALL_ROLES}) == len(roles.ALL_ROLES)
    assert len({r.name for r in roles.ALL_ROLES}) == len(roles.ALL_ROLES)
    assert roles.subscription_of("/subscriptions/abc/resourceGroups/x") == "/subscriptions/abc"
    assert (
        roles.resource_group_of("/subscriptions/abc/resourceGroups/x/providers/P/t/n")
        == "/subscriptions/abc/resourceGroups/x"
    )
    assert roles.BY_GUID[roles.STORAGE_BLOB_DATA_OWNER.guid] is roles.STORAGE_BLOB_DATA_OWNER


def test_without_custom_roles_the_least_built_in_roles_are_assigned() -> None:
    run = run_program_with_outputs({"customRoles": False})
    assert not of_type(run.registrations, ROLE_DEFINITION)
    by_name = {
        r.name: r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        for r in of_type(run.registrations, ROLE_ASSIGNMENT)
    }
    assert by_name["acsrec-func-recordings-blob"] == roles.STORAGE_BLOB_DATA_OWNER.guid
    assert by_name["acsrec-func-events-queue"] == roles.STORAGE_QUEUE_DATA_CONTRIBUTOR.guid
    assert by_name["acsrec-func-registry-table"] == roles.STORAGE_TABLE_DATA_CONTRIBUTOR.guid
    assert by_name["acsrec-func-poison-queue"] == roles.STORAGE_QUEUE_DATA_CONTRIBUTOR.guid
    # Tags: Storage Blob Data Contributor has none, so only the Owner role covers the marks.
    assert by_name["acsrec-func-deadletter-reconciler"] == roles.STORAGE_BLOB_DATA_OWNER.guid


def test_custom_role_assignments_wait_for_their_definitions(default_run: ProgramRun) -> None:
    """An assignment made right after a new definition can meet RoleDefinitionDoesNotExist."""
    regs = default_run.registrations
    wait = one(regs, "pulumi-python:dynamic:Resource", "acsrec-func-role-definitions-settled")
    definitions = of_type(regs, ROLE_DEFINITION)
    assert sorted(wait.inputs["grant_ids"]) == sorted(d.outputs["id"] for d in definitions)
    assert {d.urn for d in definitions} <= set(wait.depends_on)
    custom_ids = {d.outputs["id"] for d in definitions}
    for assignment in of_type(regs, ROLE_ASSIGNMENT):
        waits = wait.urn in assignment.depends_on
        assert waits == (assignment.inputs["roleDefinitionId"] in custom_ids), assignment.name


def test_custom_role_guids_differ_between_two_stacks_in_one_resource_group() -> None:
    """Two stacks given the same resourceGroupName must not share (or overwrite) a role."""
    ids = []
    for prefix in ("acsrec", "acsrectwo"):
        regs = run_program_with_outputs(
            {"resourceGroupName": "shared-rg", "namePrefix": prefix}
        ).registrations
        ids.append({d.inputs["roleDefinitionId"] for d in of_type(regs, ROLE_DEFINITION)})
    assert len(ids[0]) == len(ids[1]) > 0
    assert not ids[0] & ids[1]
