"""A pause between role assignments and the first resource Azure validates with them.

Azure RBAC is eventually consistent: a role assignment that ARM has just accepted can take a
minute or more to reach the data plane that checks it. Event Grid validates a subscription's
delivery and dead-letter destinations with the topic's identity when the subscription is created
("Event delivery with a managed identity": the role must be in place before the subscription),
so creating it right after the grants can fail on a first deployment while a second
``pulumi up`` succeeds. This dynamic resource waits once after the grants are created (and again
only if they are replaced), which turns that race into a bounded delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.deployment import REPO_ROOT, trampoline_provider


class PropagationWaitProvider(ResourceProvider):
    """Sleeps on create and when the awaited grants change; nothing else triggers a wait."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep

    def create(self, props: dict[str, Any]) -> CreateResult:
        self.sleep(float(props["seconds"]))
        return CreateResult(id_=f"wait-{len(props['grant_ids'])}-grants", outs=dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = sorted(olds.get("grant_ids") or []) != sorted(news.get("grant_ids") or [])
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.sleep(float(news["seconds"]))
        return UpdateResult(outs=dict(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo."""


class RolePropagationWait(pulumi.dynamic.Resource):
    """Done ``seconds`` after every grant in ``grants`` exists; make a consumer depend on it."""

    def __init__(
        self,
        name: str,
        *,
        grants: Sequence[pulumi.CustomResource],
        seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            trampoline_provider(REPO_ROOT, __name__, PropagationWaitProvider.__name__),
            name,
            {"grant_ids": [grant.id for grant in grants], "seconds": seconds},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(grants))),
        )
