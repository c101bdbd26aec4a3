"""Event Grid: the ACS system topic and the subscription that drops recording events into the
ingress account's events queue, delivered and dead-lettered with the topic's own system-assigned
identity (shared keys are off, and only that identity passes a storage firewall as a trusted
service).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import eventgrid

from infra import data_access
from infra.data_access import Caller, Scope
from infra.monitoring import send_diagnostics
from infra.propagation import RolePropagationWait
from infra.storage import DEAD_LETTER_CONTAINER, EVENTS_QUEUE

RECORDING_EVENT_TYPE = "Microsoft.Communication.RecordingFileStatusUpdated"
ACS_TOPIC_TYPE = "Microsoft.Communication.CommunicationServices"
#: A queued event older than this is useless: ACS has deleted the media by then.
QUEUE_MESSAGE_TTL_SECONDS = 7 * 24 * 3600


@dataclass
class EventsArgs:
    """Inputs of :class:`RecordingEvents`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    acs_id: pulumi.Input[str]
    """Required. ACS resource whose events are routed."""
    ingress_account_id: pulumi.Input[str]
    """Required. Ingress account holding the events queue and the dead-letter container."""
    events_queue_id: pulumi.Input[str]
    """Required. Queue resource id (scope of the sender grant)."""
    dead_letter_container_id: pulumi.Input[str]
    """Required. Dead-letter container resource id (scope of the writer grant)."""
    workspace_id: pulumi.Input[str]
    """Required. Log Analytics workspace for delivery-failure logs."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""
    max_delivery_attempts: int = 30
    """Optional. Delivery attempts before dead-lettering (1-30)."""
    event_ttl_minutes: int = 1440
    """Optional. Retry window in minutes (1-1440)."""
    custom_roles: bool = True
    """Optional. Custom roles where no built-in role grants exactly what is needed."""
    role_propagation_wait_seconds: int = 120
    """Optional. Wait after the grants before creating the subscription (0 = no wait)."""


class RecordingEvents(pulumi.ComponentResource):
    """System topic on ACS + queue subscription for RecordingFileStatusUpdated only."""

    topic: eventgrid.SystemTopic
    subscription: eventgrid.SystemTopicEventSubscription

    def __init__(
        self, name: str, args: EventsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingEvents", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = eventgrid.SystemTopic(
            f"{name}-topic",
            resource_group_name=args.resource_group_name,
            location="global",
            source=args.acs_id,
            topic_type=ACS_TOPIC_TYPE,
            identity={"type": eventgrid.IdentityType.SYSTEM_ASSIGNED},
            tags=args.tags,
            opts=child,
        )
        principal_id = self.topic.identity.apply(lambda i: i.principal_id if i else None)
        grants = data_access.grant(
            name,
            Caller.EVENT_GRID,
            {
                Scope.EVENTS_QUEUE: args.events_queue_id,
                Scope.DEAD_LETTER_CONTAINER: args.dead_letter_container_id,
            },
            principal_id,
            self,
            custom_roles=args.custom_roles,
            owner_name=self.topic.name,
        )
        identity = eventgrid.EventSubscriptionIdentityArgs(
            type=eventgrid.EventSubscriptionIdentityType.SYSTEM_ASSIGNED
        )
        self.subscription = eventgrid.SystemTopicEventSubscription(
            f"{name}-to-queue",
            resource_group_name=args.resource_group_name,
            system_topic_name=self.topic.name,
            event_delivery_schema=eventgrid.EventDeliverySchema.EVENT_GRID_SCHEMA,
            filter=eventgrid.EventSubscriptionFilterArgs(
                included_event_types=[RECORDING_EVENT_TYPE]
            ),
            delivery_with_resource_identity=eventgrid.DeliveryWithResourceIdentityArgs(
                identity=identity,
                destination=eventgrid.StorageQueueEventSubscriptionDestinationArgs(
                    endpoint_type="StorageQueue",
                    resource_id=args.ingress_account_id,
                    queue_name=EVENTS_QUEUE,
                    queue_message_time_to_live_in_seconds=QUEUE_MESSAGE_TTL_SECONDS,
                ),
            ),
            retry_policy=eventgrid.RetryPolicyArgs(
                max_delivery_attempts=args.max_delivery_attempts,
                event_time_to_live_in_minutes=args.event_ttl_minutes,
            ),
            dead_letter_with_resource_identity=eventgrid.DeadLetterWithResourceIdentityArgs(
                identity=identity,
                dead_letter_destination=eventgrid.StorageBlobDeadLetterDestinationArgs(
                    endpoint_type="StorageBlob",
                    resource_id=args.ingress_account_id,
                    blob_container_name=DEAD_LETTER_CONTAINER,
                ),
            ),
            # Event Grid checks the identity can write when the subscription is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._settled(name, args, grants)),
        )
        send_diagnostics(name, self.topic.id, args.workspace_id, child)
        self.role_assignments = grants
        self.topic_id = self.topic.id
        self.register_outputs({"topic_id": self.topic_id})

    def _settled(
        self, name: str, args: EventsArgs, grants: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """What the subscription waits for: the grants, and their propagation when configured."""
        if args.role_propagation_wait_seconds <= 0:
            return grants
        return [
            *grants,
            RolePropagationWait(
                f"{name}-grants-settled",
                grants=grants,
                seconds=args.role_propagation_wait_seconds,
                opts=pulumi.ResourceOptions(parent=self),
            ),
        ]
