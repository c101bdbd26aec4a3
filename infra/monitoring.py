"""Observability: one Log Analytics workspace, workspace-based Application Insights, the action
group and the alerts that tell an operator a recording may not have reached the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import applicationinsights, monitor, operationalinsights

#: Event Grid system-topic metrics that mean an event did not reach the queue.
EVENT_DELIVERY_FAILURE_METRICS = ("DeadLetteredCount", "DroppedEventCount")
#: Name fragment the archiver's queue-triggered function and the reconciler's timer
#: (``reconcile_archive``) carry: their failed runs are alerted on.
ARCHIVER_FUNCTION_FRAGMENT = "archive"
#: Markers the app logs for a lost recording and for an event the archiver rejected to the
#: poison queue (functions/recording_pipeline/archive/archiver.py), for an event the registry
#: cannot vouch for, kept under ``unverified/`` (archive/quarantine.py), for a registry change
#: the API could not write after its retries (registry/writer.py), for a stopped recording whose
#: archive event is overdue and for a reconciler run that found something a person must see
#: (recording_pipeline/reconcile/), and for a recording's CloudEvent that could not be published
#: (recording_pipeline/events_out/announce.py); a test keeps both sides equal.
ALERT_MARKERS = (
    "RECORDING_LOST",
    "EVENT_REJECTED",
    "RECORDING_UNVERIFIED",
    "REGISTRY_WRITE_FAILED",
    "RECORDING_OVERDUE",
    "RECONCILE_ATTENTION",
    "EVENT_PUBLISH_FAILED",
    "CALL_ID_CONFLICT",
)


def send_diagnostics(
    name: str,
    resource_id: pulumi.Input[str],
    workspace_id: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> monitor.DiagnosticSetting:
    """Every log and metric of ``resource_id`` to the workspace (``<name>-diagnostics``)."""
    return monitor.DiagnosticSetting(
        f"{name}-diagnostics",
        resource_uri=resource_id,
        workspace_id=workspace_id,
        logs=[{"category_group": "allLogs", "enabled": True}],
        metrics=[{"category": "AllMetrics", "enabled": True}],
        opts=opts,
    )


#: The Function App's HTTP-triggered functions (functions/function_app.py; a test keeps both
#: sides equal): the queue trigger and the timer also write ``requests`` rows, and their
#: failures have an alert of their own.
API_FUNCTION_NAMES = ("http_app_func", "callbacks", "health")
#: HTTP requests the recording API answered with a server error (the host records every
#: invocation in Application Insights ``requests``, named after its function, with the result
#: code). Deliberate 503s (ACS or the registry unreachable) count: the API could not serve.
SERVER_ERRORS_QUERY = (
    "requests | where operation_Name in ("
    + ", ".join(f'"{name}"' for name in API_FUNCTION_NAMES)
    + ") and toint(resultCode) >= 500 | summarize failures = count()"
)


def archive_failure_query(poison_queue: str) -> str:
    """KQL over Application Insights: poison-queue moves, lost recordings, failed archiver runs.

    The host logs the poison-queue name when it moves a message after its last dequeue; the
    archiver logs a marker when it rejects an event itself or finds a recording expired at ACS
    (that run succeeds, so only the marker shows it); the API logs one when a registry change
    it answered for could not be written.
    """
    markers = " or ".join(f'message has "{m}"' for m in ALERT_MARKERS)
    return (
        f'union (traces | where message has "{poison_queue}" or {markers}), '
        f"(requests | where success == false and operation_Name has "
        f'"{ARCHIVER_FUNCTION_FRAGMENT}") '
        "| summarize failures = count()"
    )


@dataclass
class ObservabilityArgs:
    """Inputs of :class:`Observability`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    location: str
    """Required. Azure region of the workspace and the component."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    retention_days: int = 30
    """Optional. Log retention in days."""
    alert_email: str = ""
    """Optional. Email receiver of the action group; empty = no receiver."""


class Observability(pulumi.ComponentResource):
    """Log Analytics + Application Insights (Entra-only ingestion) + the action group."""

    workspace: operationalinsights.Workspace
    app_insights: applicationinsights.Component
    action_group: monitor.ActionGroup

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workspace = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku={"name": operationalinsights.WorkspaceSkuNameEnum.PER_GB2018},
            retention_in_days=args.retention_days,
            tags=args.tags,
            opts=child,
        )
        self.app_insights = applicationinsights.Component(
            f"{name}-appi",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            workspace_resource_id=self.workspace.id,
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            disable_local_auth=True,
            tags=args.tags,
            opts=child,
        )
        receivers = (
            [
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name="operator", email_address=args.alert_email, use_common_alert_schema=True
                )
            ]
            if args.alert_email
            else []
        )
        self.action_group = monitor.ActionGroup(
            f"{name}-actions",
            resource_group_name=args.resource_group_name,
            location="global",
            group_short_name="acsrec",
            enabled=True,
            email_receivers=receivers,
            tags=args.tags,
            opts=child,
        )
        self.register_outputs({"workspace_id": self.workspace.id})


@dataclass
class AlertsArgs:
    """Inputs of :class:`RecordingAlerts`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    location: str
    """Required. Region of the log alert."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    action_group_id: pulumi.Input[str]
    """Required. Where alerts go."""
    system_topic_id: pulumi.Input[str]
    """Required. Event Grid system topic whose delivery failures are alerted on."""
    app_insights_id: pulumi.Input[str]
    """Required. Application Insights component the log alert queries."""
    poison_queue: str
    """Required. Name of the poison queue."""


def _metric_criteria(
    metric: str, namespace: str
) -> monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs:
    """ "metric > 0 in the window". Typed args, not a dict: criteria is a union type and a plain
    dict would reach ARM with snake_case keys."""
    return monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
        odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
        all_of=[
            monitor.MetricCriteriaArgs(
                criterion_type="StaticThresholdCriterion",
                name=metric,
                metric_name=metric,
                metric_namespace=namespace,
                operator=monitor.Operator.GREATER_THAN,
                threshold=0,
                time_aggregation=monitor.AggregationTypeEnum.TOTAL,
            )
        ],
    )


def _log_alert(
    name: str,
    args: AlertsArgs,
    description: str,
    query: str,
    *,
    severity: int,
    opts: pulumi.ResourceOptions,
) -> monitor.ScheduledQueryRule:
    """ "query's ``failures`` > 0 in the last 15 minutes", over Application Insights."""
    return monitor.ScheduledQueryRule(
        name,
        resource_group_name=args.resource_group_name,
        location=args.location,
        kind=monitor.Kind.LOG_ALERT,
        description=description,
        severity=severity,
        enabled=True,
        scopes=[args.app_insights_id],
        evaluation_frequency="PT5M",
        window_size="PT15M",
        criteria={
            "all_of": [
                {
                    "query": query,
                    "time_aggregation": monitor.TimeAggregation.TOTAL,
                    "metric_measure_column": "failures",
                    # SDK enum has filter operators ("gt"); the rule API wants the word.
                    "operator": "GreaterThan",
                    "threshold": 0,
                    "failing_periods": {
                        "number_of_evaluation_periods": 1,
                        "min_failing_periods_to_alert": 1,
                    },
                }
            ]
        },
        actions={"action_groups": [args.action_group_id]},
        tags=args.tags,
        opts=opts,
    )


class RecordingAlerts(pulumi.ComponentResource):
    """Event Grid delivery failures, poison/archiver failures and function server errors."""

    def __init__(
        self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        actions = [monitor.MetricAlertActionArgs(action_group_id=args.action_group_id)]
        self.event_delivery = [
            monitor.MetricAlert(
                f"{name}-{metric.lower()}",
                resource_group_name=args.resource_group_name,
                location="global",
                description=f"Event Grid {metric} > 0: a recording event did not reach the queue",
                severity=1,
                enabled=True,
                scopes=[args.system_topic_id],
                evaluation_frequency="PT5M",
                window_size="PT15M",
                criteria=_metric_criteria(metric, "Microsoft.EventGrid/systemTopics"),
                actions=actions,
                tags=args.tags,
                opts=child,
            )
            for metric in EVENT_DELIVERY_FAILURE_METRICS
        ]
        self.archive_failures = _log_alert(
            f"{name}-archive-failures",
            args,
            "A recording event reached the poison queue or an archiver run failed",
            archive_failure_query(args.poison_queue),
            severity=1,
            opts=child,
        )
        # A log alert, not the Http5xx metric: Flex Consumption apps do not emit the App Service
        # HTTP metrics (the Flex tab of "Monitor Azure Functions data reference" lists none, and
        # Azure Monitor Baseline Alerts excludes FlexConsumption from them), and a metric alert
        # on a metric the resource lacks fails `pulumi up`.
        self.function_errors = _log_alert(
            f"{name}-function-errors",
            args,
            "The recording API answered with server errors (HTTP 5xx)",
            SERVER_ERRORS_QUERY,
            severity=2,
            opts=child,
        )
        self.register_outputs({})
