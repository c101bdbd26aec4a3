"""Build the Azure SDK clients from :class:`Settings`: identities in Azure, keys only locally.

Every other module asks this one for a client, so the choice between managed identity and a
local key or connection string is made in exactly one place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlparse, urlunparse

from azure.communication.callautomation import CallAutomationClient
from azure.communication.callautomation.aio import (
    CallAutomationClient as AsyncCallAutomationClient,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableClient
from azure.eventgrid import EventGridPublisherClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from recording_pipeline.hosts import is_acs_media_host
from recording_pipeline.links import AccountKeySigner, BlobSigner, UserDelegationSigner
from recording_pipeline.settings import Settings


@lru_cache(maxsize=1)
def _azure_credential() -> Any:
    """One DefaultAzureCredential per process: it caches tokens, so sharing it saves round trips."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class MediaHostOverridePolicy(SansIOHTTPPolicy):
    """Send requests for ACS media URLs to another base URL (the local emulator).

    The SDK only accepts recording URLs that are https on an ACS media host, and it checks that
    before the request enters the pipeline. This policy runs inside the pipeline, after that
    check, and swaps scheme and host (keeping path and query) only for ACS media hosts. It is
    installed only when ``ACS_MEDIA_ENDPOINT_OVERRIDE`` is set, which the Azure deployment never
    sets, so in Azure every media request goes to the URL ACS published.
    """

    def __init__(self, target_base_url: str) -> None:
        parsed = urlparse(target_base_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ValueError("target_base_url must be an absolute http(s) URL")
        self._scheme = parsed.scheme
        self._netloc = parsed.netloc

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = urlparse(request.http_request.url)
        if is_acs_media_host(url.hostname or ""):
            request.http_request.url = urlunparse(
                url._replace(scheme=self._scheme, netloc=self._netloc)
            )


def call_automation_client(settings: Settings, **kwargs: Any) -> CallAutomationClient:
    """A Call Automation client: HMAC with a local key, Entra ID (managed identity) in Azure.

    ``kwargs`` go to the azure-core pipeline (for example ``transport`` in tests, or
    ``retry_total``).
    """
    credential: Any = (
        AzureKeyCredential(settings.acs_access_key.reveal())
        if settings.acs_access_key is not None
        else _azure_credential()
    )
    return CallAutomationClient(
        settings.acs_endpoint, credential, **_acs_pipeline(settings, kwargs)
    )


def call_automation_client_async(
    settings: Settings, credential: Any, **kwargs: Any
) -> AsyncCallAutomationClient:
    """The ``aio`` counterpart of :func:`call_automation_client`, for the API's event loop.

    The API calls ACS from the event loop rather than from a worker thread: a thread hop costs
    as much as the rest of the API's own work on a busy instance.

    :param credential: from :func:`acs_async_credential`; the caller closes it.
    """
    return AsyncCallAutomationClient(
        settings.acs_endpoint, credential, **_acs_pipeline(settings, kwargs)
    )


def acs_async_credential(settings: Settings) -> Any:
    """HMAC with a local key; else the ``aio`` managed-identity credential, one per client (it
    binds to the event loop that first uses it, and must be closed)."""
    if settings.acs_access_key is not None:
        return AzureKeyCredential(settings.acs_access_key.reveal())
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def _acs_pipeline(settings: Settings, kwargs: dict[str, Any]) -> dict[str, Any]:
    if settings.acs_media_endpoint_override:
        kwargs["per_call_policies"] = [
            *kwargs.get("per_call_policies", []),
            MediaHostOverridePolicy(settings.acs_media_endpoint_override),
        ]
    return kwargs


def _storage_endpoint(account: str | None, service: str) -> str:
    return f"https://{account}.{service}.core.windows.net"


def recordings_container_client(settings: Settings, **kwargs: Any) -> ContainerClient:
    return _container_client(
        settings, settings.archive_account_name, settings.recordings_container, **kwargs
    )


def dead_letter_container_client(settings: Settings, **kwargs: Any) -> ContainerClient:
    """Where Event Grid writes the events it could not deliver (the reconciler reads them); in
    the ingress account."""
    return _container_client(
        settings, settings.ingress_account, settings.dead_letter_container, **kwargs
    )


def _container_client(
    settings: Settings, account: str | None, name: str, **kwargs: Any
) -> ContainerClient:
    if settings.archive_storage_connection_string is not None:
        return ContainerClient.from_connection_string(
            settings.archive_storage_connection_string.reveal(), name, **kwargs
        )
    return ContainerClient(
        _storage_endpoint(account, "blob"), name, credential=_azure_credential(), **kwargs
    )


def archive_blob_service_client(settings: Settings, **kwargs: Any) -> BlobServiceClient:
    """The archive account's blob service: the API reads manifests and signs links with it."""
    if settings.archive_storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.archive_storage_connection_string.reveal(), **kwargs
        )
    return BlobServiceClient(
        _storage_endpoint(settings.archive_account_name, "blob"),
        credential=_azure_credential(),
        **kwargs,
    )


def download_link_signer(settings: Settings, service: BlobServiceClient) -> BlobSigner:
    """User delegation SAS with the managed identity in Azure; the account key locally.

    Azure: the archive account has shared keys disabled, so only a user delegation key can
    sign. Locally Azurite's connection string carries the account key.
    """
    if settings.archive_storage_connection_string is None:
        return UserDelegationSigner(service, settings.recordings_container)
    credential = service.credential
    return AccountKeySigner(
        str(service.account_name), credential.account_key, settings.recordings_container
    )


def registry_table_client(settings: Settings, **kwargs: Any) -> TableClient:
    if settings.archive_storage_connection_string is not None:
        return TableClient.from_connection_string(
            settings.archive_storage_connection_string.reveal(),
            settings.registry_table,
            **kwargs,
        )
    return TableClient(
        _storage_endpoint(settings.archive_account_name, "table"),
        settings.registry_table,
        credential=_azure_credential(),
        **kwargs,
    )


def queue_client(settings: Settings, queue_name: str, **kwargs: Any) -> QueueClient:
    """A client for ``queue_name`` in the ingress account (events queue or its poison queue)."""
    if settings.archive_storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.archive_storage_connection_string.reveal(), queue_name, **kwargs
        )
    return QueueClient(
        _storage_endpoint(settings.ingress_account, "queue"),
        queue_name,
        credential=_azure_credential(),
        **kwargs,
    )


def recording_events_client(settings: Settings) -> EventGridPublisherClient | None:
    """The Event Grid custom topic's publisher; None when no topic is configured.

    In Azure the managed identity signs in (bearer token for ``https://eventgrid.azure.net``;
    the topic has local auth disabled and the app holds EventGrid Data Sender on it); locally
    the topic's key (``aeg-sas-key``) from ``RECORDING_EVENTS_TOPIC_KEY``. The sync client of
    azure-eventgrid 4.22.1 ignores pipeline options given to its constructor for basic topics
    (retries, timeouts, transport), so they are passed per call by the publisher instead.
    """
    if settings.recording_events_topic_endpoint is None:
        return None
    credential: Any = (
        AzureKeyCredential(settings.recording_events_topic_key.reveal())
        if settings.recording_events_topic_key is not None
        else _azure_credential()
    )
    return EventGridPublisherClient(settings.recording_events_topic_endpoint, credential)
