"""The Function App on Flex Consumption (FC1): plan, app, hardening and its app settings.

App settings carry endpoints and names only. Every credential is the app's system identity, so
nothing in the settings is worth stealing; the role grants live next to the app that uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import web

from infra import data_access, roles
from infra.data_access import Caller, Scope
from infra.storage import DEAD_LETTER_CONTAINER, EVENTS_QUEUE, RECORDINGS_CONTAINER, REGISTRY_TABLE

PYTHON_VERSION = "3.11"
CALLBACK_OIDC_METADATA_URL = (
    "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration"
)
#: Entra ID's v2.0 OpenID metadata of a tenant: where the API's token signing keys are published.
ENTRA_METADATA_URL = (
    "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"
)
#: Settings the function code reads (functions/recording_pipeline/settings.py).
RUNTIME_SETTING_NAMES = (
    "ACS_ENDPOINT",
    "ACS_RESOURCE_ID",
    "ACS_IMMUTABLE_RESOURCE_ID",
    "ARCHIVE_ACCOUNT_NAME",
    "INGRESS_ACCOUNT_NAME",
    "RECORDINGS_CONTAINER",
    "EVENTS_QUEUE",
    "REGISTRY_TABLE",
    "CALLBACK_OIDC_METADATA_URL",
    "DELETE_FROM_ACS_AFTER_ARCHIVE",
    "RECORDING_EVENTS_TOPIC_ENDPOINT",
    "DEAD_LETTER_CONTAINER",
    "RECONCILE_SCHEDULE",
    "OVERDUE_AFTER_MINUTES",
    "LOST_AFTER_HOURS",
    "MAX_POISON_REPLAYS",
    "API_AUTH",
    "API_TENANT_ID",
    "API_AUDIENCE",
    "API_ALLOWED_CLIENT_IDS",
    "API_REQUIRED_ROLE",
    "API_OIDC_METADATA_URL",
)
#: Settings the Functions host reads: identity-based storage, the queue trigger's connection
#: (connection="RecordingQueue") and Entra-authenticated Application Insights.
HOST_SETTING_NAMES = (
    "AzureWebJobsStorage__accountName",
    "RecordingQueue__queueServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
)
#: Never set in Azure: local-only secrets/overrides, and settings FC1 rejects.
FORBIDDEN_SETTING_NAMES = (
    "ACS_ACCESS_KEY",
    "ACS_MEDIA_ENDPOINT_OVERRIDE",
    "ARCHIVE_STORAGE_CONNECTION_STRING",
    "LOCAL_FUNCTION_KEY",
    "RECORDING_EVENTS_TOPIC_KEY",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
    "AzureWebJobsStorage",
)


def function_app_settings(
    *,
    acs_endpoint: pulumi.Input[str],
    acs_resource_id: pulumi.Input[str],
    acs_immutable_resource_id: pulumi.Input[str],
    archive_account_name: pulumi.Input[str],
    ingress_account_name: pulumi.Input[str],
    ingress_queue_endpoint: pulumi.Input[str],
    runtime_account_name: pulumi.Input[str],
    app_insights_connection_string: pulumi.Input[str],
    delete_from_acs_after_archive: bool,
    reconcile_every_minutes: int = 10,
    overdue_after_minutes: int = 30,
    lost_after_hours: int = 25,
    max_poison_replays: int = 5,
    api_auth: ApiAuthSettings | None = None,
    recording_events_topic_endpoint: pulumi.Input[str] | None = None,
) -> dict[str, pulumi.Input[str]]:
    """Every app setting of the Function App, in one place so both sides can be checked.

    ``RECONCILE_SCHEDULE`` is the reconciler timer's NCRONTAB (the host reads it through the
    trigger's ``%RECONCILE_SCHEDULE%``); the other reconciler settings are its thresholds.
    ``API_*`` say who may call the API (:class:`ApiAuthSettings`); the token settings are empty
    with ``functionKey``.
    ``RECORDING_EVENTS_TOPIC_ENDPOINT`` is written only with a topic (``publishEvents``): without
    it the code publishes nothing.
    """
    auth = api_auth or ApiAuthSettings()
    settings: dict[str, pulumi.Input[str]] = {
        "ACS_ENDPOINT": acs_endpoint,
        "ACS_RESOURCE_ID": acs_resource_id,
        "ACS_IMMUTABLE_RESOURCE_ID": acs_immutable_resource_id,
        "ARCHIVE_ACCOUNT_NAME": archive_account_name,
        "INGRESS_ACCOUNT_NAME": ingress_account_name,
        "RECORDINGS_CONTAINER": RECORDINGS_CONTAINER,
        "EVENTS_QUEUE": EVENTS_QUEUE,
        "REGISTRY_TABLE": REGISTRY_TABLE,
        "CALLBACK_OIDC_METADATA_URL": CALLBACK_OIDC_METADATA_URL,
        "DELETE_FROM_ACS_AFTER_ARCHIVE": "true" if delete_from_acs_after_archive else "false",
        **(
            {"RECORDING_EVENTS_TOPIC_ENDPOINT": recording_events_topic_endpoint}
            if recording_events_topic_endpoint is not None
            else {}
        ),
        "DEAD_LETTER_CONTAINER": DEAD_LETTER_CONTAINER,
        "RECONCILE_SCHEDULE": reconcile_schedule(reconcile_every_minutes),
        "OVERDUE_AFTER_MINUTES": str(overdue_after_minutes),
        "LOST_AFTER_HOURS": str(lost_after_hours),
        "MAX_POISON_REPLAYS": str(max_poison_replays),
        **auth.app_settings(),
        "AzureWebJobsStorage__accountName": runtime_account_name,
        # The trigger's account is also where the host writes <queue>-poison: the ingress account.
        "RecordingQueue__queueServiceUri": ingress_queue_endpoint,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": app_insights_connection_string,
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
    }
    return settings


@dataclass(frozen=True)
class ApiAuthSettings:
    """Who may call the recording API (stack keys ``apiAuth``, ``apiTenantId``, ...)."""

    mode: str = "functionKey"
    """Optional. ``functionKey``, ``entraId`` or ``both``."""
    tenant_id: str = ""
    """Conditional. Required with ``entraId``/``both``: the tenant whose tokens are accepted."""
    audiences: Sequence[str] = ()
    """Conditional. Required with ``entraId``/``both``: application ID URI and/or client id."""
    allowed_client_ids: Sequence[str] = ()
    """Optional. Only these client applications; empty = any."""
    required_role: str = ""
    """Optional. An app role every token must hold."""

    @property
    def requires_bearer_token(self) -> bool:
        return self.mode != "functionKey"

    def app_settings(self) -> dict[str, str]:
        """The ``API_*`` app settings (empty values where the mode reads none)."""
        tokens = self.requires_bearer_token
        return {
            "API_AUTH": self.mode,
            "API_TENANT_ID": self.tenant_id if tokens else "",
            "API_AUDIENCE": ",".join(self.audiences) if tokens else "",
            "API_ALLOWED_CLIENT_IDS": ",".join(self.allowed_client_ids) if tokens else "",
            "API_REQUIRED_ROLE": self.required_role if tokens else "",
            "API_OIDC_METADATA_URL": (
                ENTRA_METADATA_URL.format(tenant=self.tenant_id) if tokens else ""
            ),
        }

    @property
    def audience(self) -> str:
        """What clients ask tokens for (the first audience; empty with ``functionKey``)."""
        return self.audiences[0] if self.requires_bearer_token and self.audiences else ""


#: First priority of the inbound allow rules (App Service evaluates them lowest first).
INBOUND_RULE_PRIORITY = 100


def inbound_restrictions(
    ip_ranges: Sequence[str], service_tags: Sequence[str]
) -> list[web.IpSecurityRestrictionArgsDict]:
    """``siteConfig.ipSecurityRestrictions`` that allow only these callers.

    Any rule makes App Service deny everything it does not allow ("Azure App Service access
    restrictions"), which Flex Consumption supports ("Azure Functions networking options",
    Inbound access restrictions). Empty inputs give no rule: the API stays open to all, guarded
    by the function key and, for callbacks, ACS's signed JWT.
    """
    entries = [(ip, web.IpFilterTag.DEFAULT) for ip in ip_ranges]
    entries += [(tag, web.IpFilterTag.SERVICE_TAG) for tag in service_tags]
    return [
        {
            "name": f"allow-{index}",
            "action": "Allow",
            "priority": INBOUND_RULE_PRIORITY + index,
            "ip_address": value,
            "tag": tag,
        }
        for index, (value, tag) in enumerate(entries)
    ]


def reconcile_schedule(every_minutes: int) -> str:
    """NCRONTAB (seconds first) of a run every ``every_minutes`` minutes, on the hour's grid."""
    if every_minutes == 60:
        return "0 0 * * * *"
    return f"0 */{every_minutes} * * * *"


@dataclass
class FunctionAppArgs:
    """Inputs of :class:`RecordingFunctionApp`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    location: str
    """Required. Azure region."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    app_settings: Mapping[str, pulumi.Input[str]]
    """Required. From :func:`function_app_settings`."""
    deployment_container_url: pulumi.Input[str]
    """Required. Blob container URL Flex reads the package from (identity-authenticated)."""
    runtime_account_id: pulumi.Input[str]
    """Required. Runtime storage account (host state, deployment package)."""
    recordings_container_id: pulumi.Input[str]
    """Required. Archive container the archiver writes recordings to."""
    archive_account_id: pulumi.Input[str]
    """Required. Archive storage account: the scope a user delegation key needs (download links)."""
    events_queue_id: pulumi.Input[str]
    """Required. Queue the archiver is triggered from."""
    poison_queue_id: pulumi.Input[str]
    """Required. Queue failed events are moved to (the reconciler replays outages from it)."""
    dead_letter_container_id: pulumi.Input[str]
    """Required. Container Event Grid dead-letters to (the reconciler reads and tags it)."""
    registry_table_id: pulumi.Input[str]
    """Required. Registry table of recordings."""
    acs_id: pulumi.Input[str]
    """Required. ACS resource the API calls with Entra ID."""
    app_insights_id: pulumi.Input[str]
    """Required. Application Insights component the host publishes telemetry to."""
    events_topic_id: pulumi.Input[str] | None = None
    """Optional. Event Grid topic the app publishes the recordings' CloudEvents to (EventGrid
    Data Sender on it); None: ``publishEvents`` is off."""
    instance_memory_mb: int = 2048
    """Optional. Flex instance memory (512, 2048 or 4096)."""
    maximum_instances: int = 40
    """Optional. Flex scale-out limit."""
    custom_roles: bool = True
    """Optional. Custom roles with exactly the permissions the code uses (False: the least
    built-in roles that cover them)."""
    role_propagation_wait_seconds: int = 120
    """Optional. Wait after new custom role definitions before assigning them (0 = no wait)."""
    zone_redundant: bool = False
    """Optional. Spread the plan's instances over availability zones (``zoneRedundant``)."""
    virtual_network_subnet_id: pulumi.Input[str] | None = None
    """Optional. Integration subnet (delegated to Microsoft.App/environments); None = no VNet."""
    inbound_ip_ranges: Sequence[str] = ()
    """Optional. Only these CIDRs (and the tags below) may call the app; empty = anyone."""
    inbound_service_tags: Sequence[str] = ()
    """Optional. Azure service tags allowed to call the app."""
    network_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """Optional. What must exist before the app starts (private endpoints' DNS records): with
    storage behind private endpoints the host cannot start without them."""


class RecordingFunctionApp(pulumi.ComponentResource):
    """FC1 plan + Linux Python Function App with a system identity and least-privilege grants."""

    plan: web.AppServicePlan
    app: web.WebApp

    def __init__(
        self, name: str, args: FunctionAppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingFunctionApp", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.plan = web.AppServicePlan(
            f"{name}-plan",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp",
            reserved=True,
            sku={"name": "FC1", "tier": "FlexConsumption"},
            # Flex Consumption's zone redundancy is the plan's zoneRedundant ("Reliability in
            # Azure Functions"); None is not sent, so a plan without it keeps its inputs.
            zone_redundant=True if args.zone_redundant else None,
            tags=args.tags,
            opts=child,
        )
        site_config: web.SiteConfigArgsDict = {
            "app_settings": [
                {"name": key, "value": value} for key, value in args.app_settings.items()
            ],
            # Only properties Flex Consumption accepts: ARM refuses e.g. ftpsState on FC1
            # (error 51021; policy/baseline.py FLEX_REFUSED_SITE_CONFIG). FTP is off through the
            # basic-publishing-credentials policies below, and Flex has no FTP endpoint.
            "min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
            "scm_min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
            "http20_enabled": True,
            "remote_debugging_enabled": False,
            # No healthCheckPath: Flex Consumption has no platform health check (Microsoft's
            # Azure Monitor Baseline Alerts exclude HealthCheckStatus for FlexConsumption).
        }
        restrictions = inbound_restrictions(args.inbound_ip_ranges, args.inbound_service_tags)
        if restrictions:
            site_config["ip_security_restrictions"] = restrictions
            # OneDeploy reaches the SCM site from the deploying runner; it takes Entra tokens
            # only (basic publishing is off below), so it keeps its own open rules.
            site_config["scm_ip_security_restrictions_use_main"] = False
        self.app = web.WebApp(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp,linux",
            server_farm_id=self.plan.id,
            https_only=True,
            identity={"type": web.ManagedServiceIdentityType.SYSTEM_ASSIGNED},
            site_config=site_config,
            # None (the public mode) is not sent: no VNet integration.
            virtual_network_subnet_id=args.virtual_network_subnet_id,
            function_app_config={
                "deployment": {
                    "storage": {
                        "type": web.FunctionsDeploymentStorageType.BLOB_CONTAINER,
                        "value": args.deployment_container_url,
                        "authentication": {"type": web.AuthenticationType.SYSTEM_ASSIGNED_IDENTITY},
                    }
                },
                "runtime": {"name": web.RuntimeName.PYTHON, "version": PYTHON_VERSION},
                "scale_and_concurrency": {
                    "instance_memory_mb": args.instance_memory_mb,
                    "maximum_instance_count": args.maximum_instances,
                },
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.network_ready)),
        )
        # Basic (user/password) publishing stays off for both FTP and the SCM site: deployments
        # use an Entra token (see infra/deployment.py).
        web.WebAppFtpAllowed(
            f"{name}-ftp-basic-auth",
            name=self.app.name,
            resource_group_name=args.resource_group_name,
            allow=False,
            opts=child,
        )
        web.WebAppScmAllowed(
            f"{name}-scm-basic-auth",
            name=self.app.name,
            resource_group_name=args.resource_group_name,
            allow=False,
            opts=child,
        )
        self.principal_id = self.app.identity.apply(lambda i: i.principal_id if i else None)
        self.role_assignments = self._grant(name, args)
        self.name = self.app.name
        self.id = self.app.id
        self.default_host_name = self.app.default_host_name
        self.scm_url = pulumi.Output.all(self.app.name, self.app.enabled_host_names).apply(
            lambda values: scm_url_of(values[0], values[1] or [])
        )
        self.register_outputs({"name": self.name, "principal_id": self.principal_id})

    def _grant(self, name: str, args: FunctionAppArgs) -> list[pulumi.Resource]:
        """Storage and events-topic grants derived from what the code calls
        (infra/data_access.py), each on the smallest scope; ACS and telemetry are granted here
        by name."""
        scope_ids = {
            Scope.RUNTIME_ACCOUNT: args.runtime_account_id,
            # Same account: the host's diagnostic events go to its tables (a second role).
            Scope.RUNTIME_TABLES: args.runtime_account_id,
            Scope.RECORDINGS_CONTAINER: args.recordings_container_id,
            # A user delegation key can only be requested at account scope; it signs the API's
            # read-only download links, which the container-scoped role still caps.
            Scope.ARCHIVE_ACCOUNT: args.archive_account_id,
            Scope.EVENTS_QUEUE: args.events_queue_id,
            Scope.POISON_QUEUE: args.poison_queue_id,
            Scope.DEAD_LETTER_CONTAINER: args.dead_letter_container_id,
            Scope.REGISTRY_TABLE: args.registry_table_id,
        }
        if args.events_topic_id is not None:
            scope_ids[Scope.EVENTS_TOPIC] = args.events_topic_id
        storage = data_access.grant(
            name,
            Caller.FUNCTION_APP,
            scope_ids,
            self.principal_id,
            self,
            custom_roles=args.custom_roles,
            owner_name=self.app.name,
            propagation_wait_seconds=args.role_propagation_wait_seconds,
        )
        others = (
            ("acs", roles.COMMUNICATION_AND_EMAIL_SERVICE_OWNER, args.acs_id),
            ("telemetry", roles.MONITORING_METRICS_PUBLISHER, args.app_insights_id),
        )
        return storage + [
            roles.assign_role(f"{name}-{suffix}", role, self.principal_id, scope, self)
            for suffix, role, scope in others
        ]


def scm_url_of(app_name: str, enabled_host_names: list[str]) -> str:
    """The Kudu (SCM) base URL; Flex apps may carry a regional host name, so prefer the real one."""
    for host in enabled_host_names:
        if ".scm." in host:
            return f"https://{host}"
    return f"https://{app_name}.scm.azurewebsites.net"
