"""Locking the recordings container's immutability (WORM) policy, when configured.

ARM creates container immutability policies unlocked; locking is a separate action
(``POST <policy id>/lock`` with the policy's ETag) that no azure-native resource exposes, so a
small dynamic provider performs it once. A locked policy cannot be shortened or removed by
anyone, which is the point for compliance archives and the reason this is off by default.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from infra.deployment import REPO_ROOT, http_request, trampoline_provider

ARM_ENDPOINT = "https://management.azure.com"
ARM_ACCESS_SCOPE = "https://management.azure.com/.default"
STORAGE_API_VERSION = "2023-05-01"


class ImmutabilityLockError(RuntimeError):
    """ARM refused to lock the policy; the message carries ARM's reason."""


def default_arm_token() -> str:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential().get_token(ARM_ACCESS_SCOPE).token


def lock_policy(
    policy_id: str, etag: str, token: str, *, arm_endpoint: str = ARM_ENDPOINT
) -> Mapping[str, Any]:
    """Lock one container immutability policy; returns ARM's view of the locked policy."""
    status, payload = http_request(
        "POST",
        f"{arm_endpoint.rstrip('/')}{policy_id}/lock?api-version={STORAGE_API_VERSION}",
        token,
        headers={"If-Match": etag},
        timeout=60.0,
    )
    try:
        body = json.loads(payload or b"{}")
    except json.JSONDecodeError:
        body = {}
    if status >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        reason = error.get("message") or payload.decode("utf-8", "replace")[:500]
        raise ImmutabilityLockError(f"locking {policy_id} failed with HTTP {status}: {reason}")
    state = body.get("properties", {}).get("state") if isinstance(body, dict) else None
    if state != "Locked":
        raise ImmutabilityLockError(f"locking {policy_id} answered state {state!r}, not Locked")
    return body


class ImmutabilityLockProvider(ResourceProvider):
    """Create = lock. There is no unlock, so delete only forgets the resource."""

    def __init__(
        self, token_source: Callable[[], str] | None = None, arm_endpoint: str = ARM_ENDPOINT
    ) -> None:
        self.token_source = token_source or default_arm_token
        self.arm_endpoint = arm_endpoint

    def create(self, props: dict[str, Any]) -> CreateResult:
        lock_policy(
            props["policy_id"], props["etag"], self.token_source(), arm_endpoint=self.arm_endpoint
        )
        return CreateResult(id_=f"{props['policy_id']}/lock", outs={**props, "state": "Locked"})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        moved = olds.get("policy_id") != news.get("policy_id")
        return DiffResult(changes=moved, replaces=["policy_id"] if moved else [])

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """A locked policy outlives this resource; nothing can or should be undone."""


class ImmutabilityLock(pulumi.dynamic.Resource):
    """The lock on one container immutability policy."""

    state: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        policy_id: pulumi.Input[str],
        etag: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            trampoline_provider(REPO_ROOT, __name__, ImmutabilityLockProvider.__name__),
            name,
            {"policy_id": policy_id, "etag": etag, "state": None},
            opts,
        )
