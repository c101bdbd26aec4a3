"""Azure Communication Services: the resource that records calls, with its logs in Log Analytics."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import communication

from infra.monitoring import send_diagnostics


@dataclass
class CommunicationArgs:
    """Inputs of :class:`RecordingCommunication`."""

    resource_group_name: pulumi.Input[str]
    """Required. Resource group."""
    data_location: str
    """Required. Geography where ACS keeps call data at rest."""
    workspace_id: pulumi.Input[str]
    """Required. Log Analytics workspace that receives the diagnostic logs."""
    tags: dict[str, str]
    """Required. Tags of every taggable resource."""


class RecordingCommunication(pulumi.ComponentResource):
    """ACS with a system identity and every log category + metric sent to Log Analytics."""

    service: communication.CommunicationService

    def __init__(
        self, name: str, args: CommunicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acsrec:index:RecordingCommunication", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service = communication.CommunicationService(
            name,
            resource_group_name=args.resource_group_name,
            location="global",
            data_location=args.data_location,
            identity={"type": communication.ManagedServiceIdentityType.SYSTEM_ASSIGNED},
            # Entra ID only: access keys (HMAC connection strings) stop working.
            disable_local_auth=True,
            tags=args.tags,
            opts=child,
        )
        send_diagnostics(name, self.service.id, args.workspace_id, child)
        self.id = self.service.id
        self.host_name = self.service.host_name
        self.endpoint = self.service.host_name.apply(lambda host: f"https://{host}")
        self.immutable_resource_id = self.service.immutable_resource_id
        self.principal_id = self.service.identity.apply(lambda i: i.principal_id if i else None)
        self.register_outputs({"id": self.id, "endpoint": self.endpoint})
