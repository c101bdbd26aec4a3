"""Signers of read-only SAS links to single blobs of the recordings container.

Two ways to sign, chosen once in ``clients.download_link_signer``: a user delegation key
obtained with the managed identity in Azure (the archive account has shared keys disabled, and
a user delegation SAS is tied to an Entra identity and capped by its roles), and the account key
locally (Azurite). Neither the key nor a signed token is ever logged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from recording_pipeline.clock import utc_now

#: A user delegation key is reused for this long, then renewed (it may live up to 7 days).
DELEGATION_KEY_LIFETIME = timedelta(hours=1)


class BlobSigner(Protocol):
    """Signs a read-only SAS for one blob of the recordings container."""

    def sign(self, blob_name: str, expires_on: datetime) -> str: ...


class AccountKeySigner:
    """Service SAS signed with the account key (local only: Azurite's connection string).

    :param account_name: the storage account name.
    :param account_key: its key (never logged, never returned).
    :param container: the recordings container.
    """

    def __init__(self, account_name: str, account_key: str, container: str) -> None:
        if not account_key:
            raise ValueError("account_key can not be empty")
        self._account_name = account_name
        self._account_key = account_key
        self._container = container

    def sign(self, blob_name: str, expires_on: datetime) -> str:
        return generate_blob_sas(
            self._account_name,
            self._container,
            blob_name,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            expiry=expires_on,
        )


class UserDelegationSigner:
    """User delegation SAS (Azure): signed with a key obtained through the managed identity.

    One key serves many links: it is renewed when less than a link's lifetime (plus a margin)
    is left, so every link it signs stays valid for its full lifetime.

    :param service: a BlobServiceClient authenticated with Entra ID.
    :param container: the recordings container.
    :keyword clock: the current UTC time (tests).
    """

    def __init__(
        self,
        service: BlobServiceClient,
        container: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._service = service
        self._container = container
        self._clock = clock
        self._key: UserDelegationKey | None = None
        self._key_expires: datetime | None = None
        self._lock = threading.Lock()

    def sign(self, blob_name: str, expires_on: datetime) -> str:
        return generate_blob_sas(
            str(self._service.account_name),
            self._container,
            blob_name,
            user_delegation_key=self._delegation_key(expires_on),
            permission=BlobSasPermissions(read=True),
            expiry=expires_on,
            protocol="https",
        )

    def _delegation_key(self, needed_until: datetime) -> UserDelegationKey:
        with self._lock:
            if (
                self._key is None
                or self._key_expires is None
                or self._key_expires <= (needed_until + timedelta(minutes=5))
            ):
                now = self._clock()
                # Start a little in the past: the service may run a few minutes behind us.
                self._key = self._service.get_user_delegation_key(
                    now - timedelta(minutes=5), now + DELEGATION_KEY_LIFETIME
                )
                self._key_expires = now + DELEGATION_KEY_LIFETIME
            return self._key
