"""ACS, the Event Grid system topic and the subscription that feeds the ingress queue."""

from __future__ import annotations

from tests.infra.harness import ProgramRun, run_program
from tests.infra.queries import STORAGE_ACCOUNT, one

SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"


def test_acs_is_global_with_data_location_and_system_identity(default_run: ProgramRun) -> None:
    acs = one(default_run.registrations, "azure-native:communication:CommunicationService").inputs
    assert acs["location"] == "global"
    assert acs["dataLocation"] == "Europe"
    assert acs["identity"] == {"type": "SystemAssigned"}
    assert acs["disableLocalAuth"] is True, "ACS access keys must not work"


def test_data_location_follows_config() -> None:
    regs = run_program({"dataLocation": "United States"})
    acs = one(regs, "azure-native:communication:CommunicationService").inputs
    assert acs["dataLocation"] == "United States"


def test_acs_and_topic_send_diagnostics_to_log_analytics(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    workspace_id = one(regs, "azure-native:operationalinsights:Workspace").outputs["id"]
    acs = one(regs, "azure-native:communication:CommunicationService")
    topic = one(regs, "azure-native:eventgrid:SystemTopic")
    targets = {}
    for setting in (r for r in regs if r.type_ == "azure-native:monitor:DiagnosticSetting"):
        assert setting.inputs["workspaceId"] == workspace_id
        assert setting.inputs["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]
        assert setting.inputs["metrics"] == [{"category": "AllMetrics", "enabled": True}]
        targets[setting.inputs["resourceUri"]] = setting.name
    assert acs.outputs["id"] in targets
    assert topic.outputs["id"] in targets


def test_system_topic_is_on_acs_with_identity(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    acs_id = one(regs, "azure-native:communication:CommunicationService").outputs["id"]
    topic = one(regs, "azure-native:eventgrid:SystemTopic").inputs
    assert topic["location"] == "global"
    assert topic["source"] == acs_id
    assert topic["topicType"] == "Microsoft.Communication.CommunicationServices"
    assert topic["identity"] == {"type": "SystemAssigned"}


def test_subscription_delivers_only_recording_events_to_the_queue(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    ingress_id = one(regs, STORAGE_ACCOUNT, "acsrecingr").outputs["id"]
    topic_name = one(regs, "azure-native:eventgrid:SystemTopic").outputs["name"]
    sub = one(regs, SUBSCRIPTION).inputs
    assert sub["systemTopicName"] == topic_name
    assert sub["filter"] == {
        "includedEventTypes": ["Microsoft.Communication.RecordingFileStatusUpdated"],
        "isSubjectCaseSensitive": False,
    }
    assert sub["eventDeliverySchema"] == "EventGridSchema"
    assert "destination" not in sub, "delivery must use the topic identity, not a key"
    delivery = sub["deliveryWithResourceIdentity"]
    assert delivery["identity"] == {"type": "SystemAssigned"}
    assert delivery["destination"] == {
        "endpointType": "StorageQueue",
        "resourceId": ingress_id,
        "queueName": "recording-events",
        "queueMessageTimeToLiveInSeconds": 604800,
    }


def test_subscription_dead_letters_with_identity(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    ingress_id = one(regs, STORAGE_ACCOUNT, "acsrecingr").outputs["id"]
    sub = one(regs, SUBSCRIPTION).inputs
    assert "deadLetterDestination" not in sub
    assert sub["deadLetterWithResourceIdentity"] == {
        "identity": {"type": "SystemAssigned"},
        "deadLetterDestination": {
            "endpointType": "StorageBlob",
            "resourceId": ingress_id,
            "blobContainerName": "event-deadletter",
        },
    }


def test_retry_policy_follows_config(default_run: ProgramRun) -> None:
    sub = one(default_run.registrations, SUBSCRIPTION).inputs
    assert sub["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    custom = one(run_program({"eventMaxDeliveryAttempts": 5, "eventTtlMinutes": 60}), SUBSCRIPTION)
    assert custom.inputs["retryPolicy"] == {
        "maxDeliveryAttempts": 5,
        "eventTimeToLiveInMinutes": 60,
    }


def test_subscription_waits_for_the_topic_grants(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    sub = one(regs, SUBSCRIPTION)
    grants = [
        r.urn for r in regs if r.name.startswith("acsrec-events-") and "RoleAssignment" in r.type_
    ]
    assert len(grants) == 2
    assert set(grants) <= set(sub.depends_on)
    wait = one(regs, "pulumi-python:dynamic:Resource", "acsrec-events-grants-settled")
    assert wait.urn in sub.depends_on
    assert set(grants) <= set(wait.depends_on)
    assert wait.inputs["seconds"] == 120
    assert sorted(wait.inputs["grant_ids"]) == sorted(
        r.outputs["id"] for r in regs if r.urn in grants
    )


def test_no_wait_is_registered_when_propagation_wait_is_off() -> None:
    regs = run_program({"rolePropagationWaitSeconds": 0})
    assert not [r for r in regs if r.name.endswith("grants-settled")]
    sub = one(regs, SUBSCRIPTION)
    grants = [r.urn for r in regs if r.name.startswith("acsrec-events-") and "Role" in r.type_]
    assert set(grants) <= set(sub.depends_on)
