"""The custom topic the recordings' CloudEvents go to (``publishEvents``): CloudEvents input,
Entra-only publishing, the app's sender role on that topic only, and the app setting."""

from __future__ import annotations

from infra import roles
from policy import baseline
from tests.infra.harness import ProgramRun, run_program_with_outputs
from tests.infra.queries import ROLE_ASSIGNMENT, of_type, one

TOPIC = "azure-native:eventgrid:Topic"
WEB_APP = "azure-native:web:WebApp"


def _app_settings(run: ProgramRun) -> dict[str, str]:
    app = one(run.registrations, WEB_APP).inputs
    return {item["name"]: item["value"] for item in app["siteConfig"]["appSettings"]}


def test_topic_takes_cloud_events_from_entra_identities_only(default_run: ProgramRun) -> None:
    topic = one(default_run.registrations, TOPIC).inputs
    assert topic["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["disableLocalAuth"] is True, "access keys and SAS tokens must not publish"
    assert topic["minimumTlsVersionAllowed"] == "1.2"
    # Consumers' subscriptions deliver and dead-letter with it (keys off on their storage too).
    assert topic["identity"] == {"type": "SystemAssigned"}
    assert topic["location"] == "westeurope"
    assert baseline.resource_violations(TOPIC, topic) == {}


def test_app_publishes_to_the_topic_s_endpoint(default_run: ProgramRun) -> None:
    topic = one(default_run.registrations, TOPIC)
    endpoint = topic.outputs["endpoint"]
    assert endpoint.endswith("/api/events")
    assert _app_settings(default_run)["RECORDING_EVENTS_TOPIC_ENDPOINT"] == endpoint
    assert default_run.outputs["RECORDING_EVENTS_TOPIC_ENDPOINT"] == endpoint
    assert default_run.outputs["RECORDING_EVENTS_TOPIC_ID"] == topic.outputs["id"]


def test_only_the_app_may_send_and_only_to_this_topic(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    topic_id = one(regs, TOPIC).outputs["id"]
    app_principal = one(regs, WEB_APP).outputs["identity"]["principalId"]
    senders = [
        a
        for a in of_type(regs, ROLE_ASSIGNMENT)
        if a.inputs["roleDefinitionId"].endswith(roles.EVENTGRID_DATA_SENDER.guid)
    ]
    assert [(a.inputs["principalId"], a.inputs["scope"]) for a in senders] == [
        (app_principal, topic_id)
    ]
    assert roles.EVENTGRID_DATA_SENDER.grants.grants_data_action(
        "Microsoft.EventGrid/events/send/action"
    )


def test_topic_logs_to_the_workspace(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    topic_id = one(regs, TOPIC).outputs["id"]
    settings = [
        r
        for r in of_type(regs, "azure-native:monitor:DiagnosticSetting")
        if r.inputs["resourceUri"] == topic_id
    ]
    assert len(settings) == 1


def test_without_publish_events_there_is_no_topic_grant_or_setting() -> None:
    run = run_program_with_outputs({"publishEvents": False})
    assert of_type(run.registrations, TOPIC) == []
    assert "RECORDING_EVENTS_TOPIC_ENDPOINT" not in _app_settings(run)
    assert not [
        a
        for a in of_type(run.registrations, ROLE_ASSIGNMENT)
        if a.inputs["roleDefinitionId"].endswith(roles.EVENTGRID_DATA_SENDER.guid)
    ]
    assert run.outputs["RECORDING_EVENTS_TOPIC_ENDPOINT"] == ""


def test_private_mode_keeps_the_topic_public_with_entra_only_publishing() -> None:
    """The documented choice: no private endpoint for the topic; keys stay off."""
    regs = run_program_with_outputs({"network": "private"}).registrations
    topic = one(regs, TOPIC).inputs
    assert topic["publicNetworkAccess"] == "Enabled"
    assert topic["disableLocalAuth"] is True
    endpoints = of_type(regs, "azure-native:network:PrivateEndpoint")
    assert endpoints
    assert not any("topic" in str(e.inputs).lower() for e in endpoints)
