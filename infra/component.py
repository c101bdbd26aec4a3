"""``CallRecording``: the whole pipeline as one component composed of one child per concern."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import resources

from infra.communication import CommunicationArgs, RecordingCommunication
from infra.config import RecordingConfig
from infra.deployment import FunctionCodeDeployment
from infra.events import EventsArgs, RecordingEvents
from infra.events_topic import EventsTopicArgs, RecordingEventsTopic
from infra.function_app import (
    ApiAuthSettings,
    FunctionAppArgs,
    RecordingFunctionApp,
    function_app_settings,
)
from infra.monitoring import AlertsArgs, Observability, ObservabilityArgs, RecordingAlerts
from infra.network import EndpointTarget, NetworkArgs, RecordingNetwork
from infra.package import PackageInfo
from infra.storage import (
    DEPLOYMENT_CONTAINER,
    EVENTS_QUEUE,
    POISON_QUEUE,
    RECORDINGS_CONTAINER,
    RUNTIME_SKU,
    RUNTIME_ZONE_REDUNDANT_SKU,
    ArchiveStorage,
    ArchiveStorageArgs,
    IngressStorage,
    IngressStorageArgs,
    NetworkAccess,
    RuntimeStorage,
    RuntimeStorageArgs,
    ingress_lifecycle_rules,
    lifecycle_rules,
)

#: Sub-resources each account is reached on in the private mode (infra/data_access.py): blob for
#: recordings and manifests and table for the registry on the archive; queue for the events and
#: poison queues and blob for the dead letters on the ingress account.
ARCHIVE_SUB_RESOURCES = ("blob", "table")
INGRESS_SUB_RESOURCES = ("blob", "queue")
#: Blob for host keys, leases and the deployment package; table for the host's diagnostic events.
RUNTIME_SUB_RESOURCES = ("blob", "table")


@dataclass
class CallRecordingArgs:
    """Inputs of :class:`CallRecording`."""

    config: RecordingConfig
    """Required. The validated stack configuration."""
    package: PackageInfo | None = None
    """Optional. The code package to deploy; None registers no code deployment."""


class CallRecording(pulumi.ComponentResource):
    """ACS + Event Grid + ingress queue + archiver Function App + archive storage + monitoring."""

    api_base_url: pulumi.Output[str]
    function_app_name: pulumi.Output[str]
    acs_endpoint: pulumi.Output[str]
    acs_resource_id: pulumi.Output[str]
    archive_account_name: pulumi.Output[str]
    ingress_account_name: pulumi.Output[str]
    recordings_container_url: pulumi.Output[str]
    resource_group_name: pulumi.Output[str]
    network: RecordingNetwork | None
    recording_events_topic_id: pulumi.Input[str]
    recording_events_topic_endpoint: pulumi.Input[str]

    def __init__(
        self, name: str, args: CallRecordingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:CallRecording", name, None, opts)
        cfg = args.config
        tags = cfg.resource_tags
        child = pulumi.ResourceOptions(parent=self)
        prefix = cfg.name_prefix
        rg_name = self._resource_group(cfg, child)

        observability = Observability(
            f"{prefix}-obs",
            ObservabilityArgs(rg_name, cfg.location, tags, cfg.log_retention_days, cfg.alert_email),
            child,
        )
        acs = RecordingCommunication(
            f"{prefix}-acs",
            CommunicationArgs(rg_name, cfg.data_location, observability.workspace.id, tags),
            child,
        )
        # The accounts the app alone reaches refuse public networks in the private mode.
        private_only = NetworkAccess.PRIVATE_ENDPOINTS_ONLY if cfg.private else NetworkAccess.OPEN
        archive = ArchiveStorage(
            f"{prefix}arch",
            ArchiveStorageArgs(
                resource_group_name=rg_name,
                location=cfg.location,
                tags=tags,
                lifecycle=lifecycle_rules(
                    cool_after_days=cfg.cool_after_days,
                    cold_after_days=cfg.cold_after_days,
                    archive_after_days=cfg.archive_after_days,
                    retention_days=cfg.retention_days,
                    version_retention_days=cfg.version_retention_days,
                ),
                soft_delete_days=cfg.soft_delete_retention_days,
                immutability_days=cfg.immutability_days,
                lock_immutability=cfg.lock_immutability,
                retain_on_destroy=cfg.retain_archive_on_destroy,
                network_access=private_only,
            ),
            child,
        )
        small_sku = RUNTIME_ZONE_REDUNDANT_SKU if cfg.zone_redundant else RUNTIME_SKU
        ingress = IngressStorage(
            f"{prefix}ingr",
            IngressStorageArgs(
                resource_group_name=rg_name,
                location=cfg.location,
                tags=tags,
                lifecycle=ingress_lifecycle_rules(
                    dead_letter_retention_days=cfg.dead_letter_retention_days,
                    version_retention_days=cfg.version_retention_days,
                ),
                soft_delete_days=cfg.soft_delete_retention_days,
                sku=small_sku,
                # Event Grid delivers through a storage firewall only as a trusted service.
                network_access=(
                    NetworkAccess.TRUSTED_SERVICES_ONLY if cfg.private else NetworkAccess.OPEN
                ),
            ),
            child,
        )
        runtime = RuntimeStorage(
            f"{prefix}host",
            RuntimeStorageArgs(
                rg_name, cfg.location, tags, sku=small_sku, network_access=private_only
            ),
            child,
        )
        self.network = self._network(cfg, rg_name, archive, ingress, runtime, child)
        events_topic = (
            RecordingEventsTopic(
                f"{prefix}-recording-events",
                EventsTopicArgs(rg_name, cfg.location, observability.workspace.id, tags),
                child,
            )
            if cfg.publish_events
            else None
        )
        api_auth = ApiAuthSettings(
            mode=cfg.api_auth,
            tenant_id=cfg.api_tenant_id,
            audiences=cfg.api_audiences,
            allowed_client_ids=tuple(cfg.api_allowed_client_ids),
            required_role=cfg.api_required_role,
        )
        settings = function_app_settings(
            acs_endpoint=acs.endpoint,
            acs_resource_id=acs.id,
            acs_immutable_resource_id=acs.immutable_resource_id,
            archive_account_name=archive.account_name,
            ingress_account_name=ingress.account_name,
            ingress_queue_endpoint=ingress.queue_endpoint,
            runtime_account_name=runtime.account_name,
            app_insights_connection_string=observability.app_insights.connection_string,
            delete_from_acs_after_archive=cfg.delete_from_acs_after_archive,
            reconcile_every_minutes=cfg.reconcile_every_minutes,
            overdue_after_minutes=cfg.overdue_after_minutes,
            lost_after_hours=cfg.lost_after_hours,
            max_poison_replays=cfg.max_poison_replays,
            api_auth=api_auth,
            recording_events_topic_endpoint=events_topic.endpoint if events_topic else None,
        )
        function_app = RecordingFunctionApp(
            f"{prefix}-func",
            FunctionAppArgs(
                resource_group_name=rg_name,
                location=cfg.location,
                tags=tags,
                app_settings=settings,
                deployment_container_url=runtime.blob_endpoint.apply(
                    lambda endpoint: f"{endpoint.rstrip('/')}/{DEPLOYMENT_CONTAINER}"
                ),
                runtime_account_id=runtime.account_id,
                recordings_container_id=archive.recordings_container.id,
                archive_account_id=archive.account_id,
                events_queue_id=ingress.events_queue.id,
                poison_queue_id=ingress.poison_queue.id,
                dead_letter_container_id=ingress.dead_letter_container.id,
                registry_table_id=archive.registry_table.id,
                acs_id=acs.id,
                app_insights_id=observability.app_insights.id,
                events_topic_id=events_topic.topic_id if events_topic else None,
                instance_memory_mb=cfg.function_instance_memory_mb,
                maximum_instances=cfg.function_maximum_instances,
                custom_roles=cfg.custom_roles,
                role_propagation_wait_seconds=cfg.role_propagation_wait_seconds,
                zone_redundant=cfg.zone_redundant,
                virtual_network_subnet_id=(
                    self.network.integration_subnet_id if self.network else None
                ),
                inbound_ip_ranges=cfg.api_allowed_ip_ranges,
                inbound_service_tags=cfg.api_allowed_service_tags,
                network_ready=self.network.ready if self.network else [],
            ),
            child,
        )
        events = RecordingEvents(
            f"{prefix}-events",
            EventsArgs(
                resource_group_name=rg_name,
                acs_id=acs.id,
                ingress_account_id=ingress.account_id,
                events_queue_id=ingress.events_queue.id,
                dead_letter_container_id=ingress.dead_letter_container.id,
                workspace_id=observability.workspace.id,
                tags=tags,
                max_delivery_attempts=cfg.event_max_delivery_attempts,
                event_ttl_minutes=cfg.event_ttl_minutes,
                custom_roles=cfg.custom_roles,
                role_propagation_wait_seconds=cfg.role_propagation_wait_seconds,
            ),
            child,
        )
        RecordingAlerts(
            f"{prefix}-alerts",
            AlertsArgs(
                resource_group_name=rg_name,
                location=cfg.location,
                tags=tags,
                action_group_id=observability.action_group.id,
                system_topic_id=events.topic_id,
                app_insights_id=observability.app_insights.id,
                poison_queue=POISON_QUEUE,
            ),
            child,
        )
        if args.package is not None:
            FunctionCodeDeployment(
                f"{prefix}-code",
                app_name=function_app.name,
                scm_url=function_app.scm_url,
                package_path=str(args.package.path),
                package_sha256=args.package.sha256,
                # The host reads the package with its identity: grants first, then publish.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[function_app.app, *function_app.role_assignments],
                ),
            )

        self.resource_group_name = pulumi.Output.from_input(rg_name)
        self.api_base_url = function_app.default_host_name.apply(lambda h: f"https://{h}/api")
        self.function_app_name = function_app.name
        self.acs_endpoint = acs.endpoint
        self.acs_resource_id = acs.id
        self.archive_account_name = archive.account_name
        self.ingress_account_name = ingress.account_name
        self.recordings_container_url = archive.blob_endpoint.apply(
            lambda endpoint: f"{endpoint.rstrip('/')}/{RECORDINGS_CONTAINER}"
        )
        self.events_queue = EVENTS_QUEUE
        self.poison_queue = POISON_QUEUE
        self.network_mode = cfg.network
        self.api_audience = api_auth.audience
        # Consumers subscribe to the topic (its id) and may check what the app publishes to.
        self.recording_events_topic_id = events_topic.topic_id if events_topic else ""
        self.recording_events_topic_endpoint = events_topic.endpoint if events_topic else ""
        # register_outputs last: it tells the engine the component is complete.
        self.register_outputs(self.outputs())

    def _network(
        self,
        cfg: RecordingConfig,
        rg_name: pulumi.Input[str],
        archive: ArchiveStorage,
        ingress: IngressStorage,
        runtime: RuntimeStorage,
        child: pulumi.ResourceOptions,
    ) -> RecordingNetwork | None:
        """The private mode's network; nothing at all in the public mode."""
        if not cfg.private:
            return None
        return RecordingNetwork(
            f"{cfg.name_prefix}-net",
            NetworkArgs(
                resource_group_name=rg_name,
                location=cfg.location,
                tags=cfg.resource_tags,
                endpoints=[
                    EndpointTarget("archive", archive.account_id, ARCHIVE_SUB_RESOURCES),
                    EndpointTarget("ingress", ingress.account_id, INGRESS_SUB_RESOURCES),
                    EndpointTarget("runtime", runtime.account_id, RUNTIME_SUB_RESOURCES),
                ],
                vnet_address_space=cfg.vnet_address_space,
                integration_subnet_prefix=cfg.integration_subnet_prefix,
                private_endpoint_subnet_prefix=cfg.private_endpoint_subnet_prefix,
                existing_vnet_id=cfg.existing_vnet_id,
                existing_integration_subnet_name=cfg.existing_integration_subnet_name,
                existing_private_endpoint_subnet_name=cfg.existing_private_endpoint_subnet_name,
                existing_private_dns_zone_ids=cfg.existing_private_dns_zone_ids,
            ),
            child,
        )

    def _resource_group(
        self, cfg: RecordingConfig, child: pulumi.ResourceOptions
    ) -> pulumi.Input[str]:
        if cfg.resource_group_name:
            return cfg.resource_group_name
        # Deleting a resource group deletes everything in it, retained or not: when the archive
        # must survive `pulumi destroy`, the group that holds it must survive too.
        group = resources.ResourceGroup(
            f"{cfg.name_prefix}-{cfg.stack}",
            location=cfg.location,
            tags=cfg.resource_tags,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(retain_on_delete=cfg.retain_archive_on_destroy)
            ),
        )
        return group.name

    def outputs(self) -> dict[str, pulumi.Input[str]]:
        """Stack outputs, named like the settings and variables that consume them."""
        return {
            "API_BASE_URL": self.api_base_url,
            "FUNCTION_APP_NAME": self.function_app_name,
            "ACS_ENDPOINT": self.acs_endpoint,
            "ACS_RESOURCE_ID": self.acs_resource_id,
            "ARCHIVE_ACCOUNT_NAME": self.archive_account_name,
            "INGRESS_ACCOUNT_NAME": self.ingress_account_name,
            "RECORDINGS_CONTAINER_URL": self.recordings_container_url,
            "EVENTS_QUEUE": self.events_queue,
            "POISON_QUEUE": self.poison_queue,
            "RESOURCE_GROUP_NAME": self.resource_group_name,
            # The smoke test skips the data-plane checks a runner outside the VNet cannot make.
            "NETWORK_MODE": self.network_mode,
            # What clients ask Entra ID tokens for (`<API_AUDIENCE>/.default`); empty with
            # apiAuth functionKey. Not a secret: it names the API, it grants nothing.
            "API_AUDIENCE": self.api_audience,
            # Empty with publishEvents false (no topic).
            "RECORDING_EVENTS_TOPIC_ID": self.recording_events_topic_id,
            "RECORDING_EVENTS_TOPIC_ENDPOINT": self.recording_events_topic_endpoint,
        }
