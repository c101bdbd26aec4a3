"""Reach the emulator with the real Call Automation SDK, media downloads included.

The SDK talks to whatever endpoint it is given for the Call Recording API, but it refuses media
URLs that are not https on an ACS media host (``*.asm.skype.com`` and two Teams hosts); it
checks this *before* the request enters the pipeline. Events from the emulator therefore carry
real-looking URLs such as ``https://emulator.asm.skype.com/v1/objects/<documentId>/content/audio``
and the client is given an explicit override: ``media_host_override_policy(target)``, an
azure-core per-call policy that, after the SDK's validation, rewrites the scheme and host of
requests aimed at an ACS media host to ``target`` (the emulator). Nothing about the check is
weakened; a client built without the policy, as in Azure, is unchanged.

Use :func:`emulator_call_automation_client` (or the async variant) to build a client with the
policy already in place::

    client = emulator_call_automation_client("http://127.0.0.1:8999", access_key)
    stream = client.download_recording(event_content_location)

The HMAC signature covers the path and the endpoint's host, both untouched by the rewrite, so
the emulator verifies media requests exactly as ACS does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from emulator.constants import ALLOWED_MEDIA_HOST_SUFFIXES

if TYPE_CHECKING:  # the SDK is imported lazily: the emulator itself does not need it
    from azure.communication.callautomation import CallAutomationClient
    from azure.communication.callautomation.aio import (
        CallAutomationClient as AsyncCallAutomationClient,
    )


class MediaHostOverridePolicy(SansIOHTTPPolicy):
    """Send requests for ACS media hosts to ``target_base_url`` instead (scheme, host, port)."""

    def __init__(self, target_base_url: str) -> None:
        super().__init__()
        target = urlsplit(target_base_url)
        if target.scheme not in ("http", "https") or not target.netloc:
            raise ValueError(
                f"target_base_url must be an absolute http(s) URL, got {target_base_url!r}"
            )
        self._scheme = target.scheme
        self._netloc = target.netloc

    def on_request(self, request: PipelineRequest) -> None:
        url = urlsplit(request.http_request.url)
        host = (url.hostname or "").lower()
        if url.scheme == "https" and host.endswith(ALLOWED_MEDIA_HOST_SUFFIXES):
            request.http_request.url = urlunsplit(
                (self._scheme, self._netloc, url.path, url.query, url.fragment)
            )


def media_host_override_policy(target_base_url: str) -> MediaHostOverridePolicy:
    return MediaHostOverridePolicy(target_base_url)


def _client_kwargs(endpoint: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    policies = list(kwargs.pop("per_call_policies", []) or [])
    policies.append(media_host_override_policy(kwargs.pop("media_base_url", endpoint)))
    return {"per_call_policies": policies, **kwargs}


def emulator_call_automation_client(
    endpoint: str, access_key: str, **kwargs: Any
) -> CallAutomationClient:
    """A real ``CallAutomationClient`` whose API and media calls reach the emulator.

    ``endpoint`` is the emulator's base URL (plain http is fine locally: the connection-string
    constructor would force https, so the client is built from endpoint + key). Extra keyword
    arguments (``retry_total=0``, ``transport=...``, ``media_base_url=...``) go to the client.
    """
    from azure.communication.callautomation import CallAutomationClient as SyncClient

    return SyncClient(endpoint, AzureKeyCredential(access_key), **_client_kwargs(endpoint, kwargs))


def emulator_call_automation_client_async(
    endpoint: str, access_key: str, **kwargs: Any
) -> AsyncCallAutomationClient:
    """The ``aio`` client counterpart of :func:`emulator_call_automation_client`."""
    from azure.communication.callautomation.aio import CallAutomationClient as AsyncClient

    return AsyncClient(endpoint, AzureKeyCredential(access_key), **_client_kwargs(endpoint, kwargs))
