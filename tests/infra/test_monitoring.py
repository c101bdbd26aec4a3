"""Log Analytics, Application Insights, the action group and the alerts."""

from __future__ import annotations

from infra.monitoring import SERVER_ERRORS_QUERY, archive_failure_query
from tests.infra.harness import ProgramRun, run_program
from tests.infra.queries import of_type, one

ACTION_GROUP = "azure-native:monitor:ActionGroup"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"


def test_workspace_and_workspace_based_app_insights_without_local_auth(
    default_run: ProgramRun,
) -> None:
    regs = default_run.registrations
    workspace = one(regs, "azure-native:operationalinsights:Workspace")
    assert workspace.inputs["sku"] == {"name": "PerGB2018"}
    assert workspace.inputs["retentionInDays"] == 30
    insights = one(regs, "azure-native:applicationinsights:Component").inputs
    assert insights["workspaceResourceId"] == workspace.outputs["id"]
    assert insights["ingestionMode"] == "LogAnalytics"
    assert insights["disableLocalAuth"] is True
    assert insights["applicationType"] == "web"


def test_log_retention_follows_config() -> None:
    workspace = one(
        run_program({"logRetentionDays": 90}), "azure-native:operationalinsights:Workspace"
    )
    assert workspace.inputs["retentionInDays"] == 90


def test_action_group_has_no_receiver_without_an_email(default_run: ProgramRun) -> None:
    group = one(default_run.registrations, ACTION_GROUP).inputs
    assert group["enabled"] is True
    assert group["location"] == "global"
    assert group.get("emailReceivers", []) == []


def test_action_group_mails_the_configured_address() -> None:
    group = one(run_program({"alertEmail": "ops@example.com"}), ACTION_GROUP).inputs
    assert group["emailReceivers"] == [
        {"name": "operator", "emailAddress": "ops@example.com", "useCommonAlertSchema": True}
    ]


def _action_group_id(run: ProgramRun) -> str:
    return one(run.registrations, ACTION_GROUP).outputs["id"]


def test_event_grid_dead_lettered_and_dropped_events_alert(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    topic_id = one(regs, "azure-native:eventgrid:SystemTopic").outputs["id"]
    alerts = {
        alert.inputs["criteria"]["allOf"][0]["metricName"]: alert.inputs
        for alert in of_type(regs, METRIC_ALERT)
        if alert.inputs["scopes"] == [topic_id]
    }
    assert set(alerts) == {"DeadLetteredCount", "DroppedEventCount"}
    for metric, alert in alerts.items():
        criterion = alert["criteria"]["allOf"][0]
        assert criterion["metricNamespace"] == "Microsoft.EventGrid/systemTopics", metric
        assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0), metric
        assert criterion["timeAggregation"] == "Total", metric
        assert alert["enabled"] is True
        assert alert["actions"] == [{"actionGroupId": _action_group_id(default_run)}]


def test_function_errors_alert_is_a_log_alert_flex_consumption_can_feed(
    default_run: ProgramRun,
) -> None:
    """Flex Consumption apps emit no App Service HTTP metrics (Http5xx among them): no metric
    alert may target the Function App, and server errors are counted in Application Insights."""
    regs = default_run.registrations
    app_id = one(regs, "azure-native:web:WebApp").outputs["id"]
    assert [a.name for a in of_type(regs, METRIC_ALERT) if app_id in a.inputs["scopes"]] == []
    rule = one(regs, LOG_ALERT, "acsrec-alerts-function-errors").inputs
    insights_id = one(regs, "azure-native:applicationinsights:Component").outputs["id"]
    assert rule["scopes"] == [insights_id]
    condition = rule["criteria"]["allOf"][0]
    assert condition["query"] == SERVER_ERRORS_QUERY
    assert condition["query"].startswith(
        'requests | where operation_Name in ("http_app_func", "callbacks", "health") and '
        "toint(resultCode) >= 500"
    )
    assert (condition["operator"], condition["threshold"]) == ("GreaterThan", 0)
    assert condition["metricMeasureColumn"] == "failures"
    assert rule["actions"] == {"actionGroups": [_action_group_id(default_run)]}


def test_poison_queue_and_archiver_failures_log_alert(default_run: ProgramRun) -> None:
    regs = default_run.registrations
    insights_id = one(regs, "azure-native:applicationinsights:Component").outputs["id"]
    rule = one(regs, LOG_ALERT, "acsrec-alerts-archive-failures").inputs
    assert rule["kind"] == "LogAlert"
    assert rule["scopes"] == [insights_id]
    assert rule["enabled"] is True
    condition = rule["criteria"]["allOf"][0]
    assert condition["query"] == archive_failure_query("recording-events-poison")
    assert "recording-events-poison" in condition["query"]
    assert 'message has "RECORDING_LOST"' in condition["query"]
    assert 'message has "EVENT_REJECTED"' in condition["query"]
    assert 'message has "REGISTRY_WRITE_FAILED"' in condition["query"]
    assert (condition["operator"], condition["threshold"]) == ("GreaterThan", 0)
    assert condition["metricMeasureColumn"] == "failures"
    assert rule["actions"] == {"actionGroups": [_action_group_id(default_run)]}
