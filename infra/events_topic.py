"""The Event Grid custom topic the recordings' CloudEvents are published to (``publishEvents``).

The function code announces archived, lost, failed, overdue and erased recordings there
(``functions/recording_pipeline/events_out``); consumers subscribe to the topic. The topic:

- takes CloudEvents 1.0 only (``inputSchema: CloudEventSchemaV1_0``; set explicitly, the
  provider's default is ``EventGridSchema``, and Event Grid documents the schema as chosen when
  the topic is created);
- has local authentication off (``disableLocalAuth: true``; the provider's default is false):
  no access key or SAS token publishes, only an Entra token of an identity holding EventGrid
  Data Sender on it. The app's grant is derived from ``infra/data_access.py`` (scope: this
  topic only) and made next to the app's other grants;
- has a system-assigned identity, so a consumer's subscription can deliver to a queue and
  dead-letter to a container of an account with shared keys off (``deliveryWithResourceIdentity``,
  ``deadLetterWithResourceIdentity``; the consumer grants that identity on their resources);
- requires TLS 1.2 and sends its logs and metrics to the workspace (delivery failures of the
  consumers' subscriptions show there).

In the private mode the topic keeps its public endpoint, reached through the NAT gateway like
ACS and Entra ID, and accepts only Entra tokens: it stores nothing, and a private endpoint would
add a DNS zone (``privatelink.eventgrid.azure.net``) that every landing zone must link, for an
endpoint nobody can publish to without the role anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import eventgrid

from infra.monitoring import send_diagnostics

#: The minimum TLS version the topic accepts from publishers ("1.2").
MINIMUM_TLS = eventgrid.TlsVersion.TLS_VERSION_1_2


@dataclass
class EventsTopicArgs:
    """Inputs of :class:`RecordingEventsTopic`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    location: str
    """Required. Azure region (the app's: the publish stays in the region)."""
    workspace_id: pulumi.Input[str]
    """Required. Log Analytics workspace for the topic's logs and metrics."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""


class RecordingEventsTopic(pulumi.ComponentResource):
    """Custom topic (CloudEvents input, Entra-only publishing) and its diagnostics."""

    topic: eventgrid.Topic
    topic_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    """The publish URL (``https://<topic>.<region>-1.eventgrid.azure.net/api/events``)."""

    def __init__(
        self, name: str, args: EventsTopicArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingEventsTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = eventgrid.Topic(
            name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            input_schema=eventgrid.InputSchema.CLOUD_EVENT_SCHEMA_V1_0,
            disable_local_auth=True,
            public_network_access=eventgrid.PublicNetworkAccess.ENABLED,
            minimum_tls_version_allowed=MINIMUM_TLS,
            identity={"type": eventgrid.IdentityType.SYSTEM_ASSIGNED},
            tags=args.tags,
            opts=child,
        )
        send_diagnostics(name, self.topic.id, args.workspace_id, child)
        self.topic_id = self.topic.id
        self.endpoint = self.topic.endpoint
        self.register_outputs({"topic_id": self.topic_id, "endpoint": self.endpoint})
