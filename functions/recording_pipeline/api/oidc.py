"""An OpenID provider's signing keys, fetched from its metadata and cached: one piece for every
JWT this API verifies (ACS's callback tokens, Entra ID access tokens for the API).

The metadata document names the ``issuer`` and the ``jwks_uri``; the key set there holds the
public keys, each with its ``kid``. What is cached, and for how long, is a
:class:`KeyCachePolicy`. :data:`ENTRA_KEY_POLICY` follows Microsoft's "keys metadata caching"
guidance for Entra ID (signing-key-rollover, "Best practices for keys metadata caching and
validation"): metadata refreshed every 12 hours with an hour of jitter, keys refreshed every hour
and kept for up to 24 hours while a refresh fails, and an unknown ``kid`` refreshes the keys at
most once every 5 minutes. On a failed fetch the last good copy is kept while it is within its
limit, so an outage of the provider's endpoint does not become an outage of the API; and the
next attempt waits out a back-off (a minute for Entra ID) shared by every request, so an outage
costs one timed-out fetch a minute, not one per request queued behind the lock.

Verification never needs the network on its common path: :meth:`OidcKeySource.cached_key`
answers from memory or says a fetch is needed, so a caller on an event loop verifies in place
and goes to a thread only for the rare fetch. Fetches are synchronous (urllib), never follow a
redirect, and happen under one lock, so concurrent requests share one refresh.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.api_jwk import PyJWK

LOGGER = logging.getLogger(__name__)


class OidcUnavailableError(Exception):
    """The metadata or key set could not be fetched and no usable copy is cached."""


class UnknownSigningKeyError(Exception):
    """The token's ``kid`` is not among the provider's published signing keys."""


@dataclass(frozen=True)
class KeyCachePolicy:
    """How long metadata and keys are trusted, and how often an unknown ``kid`` may refetch."""

    metadata_refresh_seconds: float
    metadata_jitter_seconds: float
    #: Metadata older than this is not used, even when its refresh fails.
    metadata_max_age_seconds: float
    keys_refresh_seconds: float
    #: A key set older than this is not used, even when its refresh fails.
    keys_max_age_seconds: float
    #: At most one key refresh per this many seconds because of an unknown ``kid``.
    unknown_kid_cooldown_seconds: float
    #: After a failed fetch of a document, no new attempt for this many seconds: requests in
    #: between get the last good copy (or, without one, OidcUnavailableError at once).
    failed_fetch_backoff_seconds: float


#: Microsoft's guidance for Entra ID (see the module docstring).
ENTRA_KEY_POLICY = KeyCachePolicy(
    metadata_refresh_seconds=12 * 3600,
    metadata_jitter_seconds=3600,
    metadata_max_age_seconds=24 * 3600,
    keys_refresh_seconds=3600,
    keys_max_age_seconds=24 * 3600,
    unknown_kid_cooldown_seconds=300,
    failed_fetch_backoff_seconds=60,
)
#: ACS's callback keys: metadata hourly, keys every 5 minutes, an unknown kid after 10 s.
ACS_CALLBACK_KEY_POLICY = KeyCachePolicy(
    metadata_refresh_seconds=3600,
    metadata_jitter_seconds=0,
    metadata_max_age_seconds=2 * 3600,
    keys_refresh_seconds=300,
    keys_max_age_seconds=3600,
    unknown_kid_cooldown_seconds=10,
    failed_fetch_backoff_seconds=10,
)


@dataclass(frozen=True)
class _Metadata:
    issuer: str
    jwks_uri: str
    fetched_at: float
    refresh_at: float


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, PyJWK]
    fetched_at: float


class OidcKeySource:
    """The signing keys an OpenID provider publishes at ``metadata_url``, cached by ``policy``.

    :param metadata_url: the provider's ``.well-known/openid-configuration`` (or ACS's
        ``acsopenidconfiguration``).
    :keyword clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        metadata_url: str,
        policy: KeyCachePolicy,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not metadata_url:
            raise ValueError("metadata_url is required")
        self.metadata_url = metadata_url
        self.policy = policy
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: _Metadata | None = None
        self._keys: _KeySet | None = None
        self._last_unknown_kid_refresh: float | None = None
        #: No fetch of the metadata / the key set before these (set by a failed fetch).
        self._metadata_retry_at = float("-inf")
        self._keys_retry_at = float("-inf")

    def cached_issuer(self) -> str | None:
        """The issuer, when the cached metadata may answer; None means :meth:`issuer` fetches."""
        metadata = self._metadata
        if metadata is None or not self._metadata_serves(metadata):
            return None
        return metadata.issuer

    def cached_key(self, kid: str) -> PyJWK | None:
        """The key for ``kid`` from a cache that may answer, or None when :meth:`signing_key`
        must run (to fetch, or to decide that the ``kid`` is unknown)."""
        keys = self._keys
        if keys is None or self.cached_issuer() is None or not self._keys_serve(keys):
            return None
        return keys.keys.get(kid)

    def issuer(self) -> str:
        """The issuer the metadata names (fetched or refreshed when due).

        :raises OidcUnavailableError: no usable metadata.
        """
        with self._lock:
            return self._current_metadata().issuer

    def signing_key(self, kid: str) -> PyJWK:
        """The published key with this ``kid``.

        :raises UnknownSigningKeyError: not published (after at most one refresh per cooldown).
        :raises OidcUnavailableError: the keys could not be fetched and none usable are cached.
        """
        with self._lock:
            keys = self._current_keys()
            if kid in keys.keys:
                return keys.keys[kid]
            now = self._clock()
            if now < self._keys_retry_at:  # the set is unreachable: the kid cannot be judged
                raise OidcUnavailableError("the OIDC key set could not be fetched (backing off)")
            last = self._last_unknown_kid_refresh
            if last is not None and now - last < self.policy.unknown_kid_cooldown_seconds:
                raise UnknownSigningKeyError(kid)
            self._last_unknown_kid_refresh = now
            keys = self._refresh_keys(self._current_metadata(), keep_stale=False)
            if kid in keys.keys:
                return keys.keys[kid]
            raise UnknownSigningKeyError(kid)

    def _serves(self, due_at: float, fetched_at: float, max_age: float, retry_at: float) -> bool:
        """A cached copy answers without a fetch until it is due, and after a failed refresh
        until the back-off ends, while it is younger than ``max_age``."""
        now = self._clock()
        return now < due_at or (now < retry_at and now - fetched_at < max_age)

    def _metadata_serves(self, metadata: _Metadata) -> bool:
        max_age = self.policy.metadata_max_age_seconds
        return self._serves(
            metadata.refresh_at, metadata.fetched_at, max_age, self._metadata_retry_at
        )

    def _keys_serve(self, keys: _KeySet) -> bool:
        due_at = keys.fetched_at + self.policy.keys_refresh_seconds
        max_age = self.policy.keys_max_age_seconds
        return self._serves(due_at, keys.fetched_at, max_age, self._keys_retry_at)

    def _current_metadata(self) -> _Metadata:
        metadata = self._metadata
        if metadata is not None and self._metadata_serves(metadata):
            return metadata
        if self._clock() < self._metadata_retry_at:
            raise OidcUnavailableError("the OIDC metadata could not be fetched (backing off)")
        try:
            self._metadata = self._fetch_metadata()
        except OidcUnavailableError:
            now = self._clock()
            self._metadata_retry_at = now + self.policy.failed_fetch_backoff_seconds
            max_age = self.policy.metadata_max_age_seconds
            if metadata is None or now - metadata.fetched_at >= max_age:
                raise
            LOGGER.warning("OIDC metadata refresh failed; keeping the last good copy")
            return metadata
        return self._metadata

    def _current_keys(self) -> _KeySet:
        metadata = self._current_metadata()
        keys = self._keys
        if keys is not None and self._keys_serve(keys):
            return keys
        if self._clock() < self._keys_retry_at:
            raise OidcUnavailableError("the OIDC key set could not be fetched (backing off)")
        return self._refresh_keys(metadata, keep_stale=True)

    def _refresh_keys(self, metadata: _Metadata, *, keep_stale: bool) -> _KeySet:
        """Fetch the key set; on failure back off, and keep the cached set while it is within
        its maximum age (``keep_stale``), else raise."""
        try:
            self._keys = _KeySet(self._fetch_keys(metadata.jwks_uri), self._clock())
        except OidcUnavailableError:
            now = self._clock()
            self._keys_retry_at = now + self.policy.failed_fetch_backoff_seconds
            keys = self._keys
            if not keep_stale or keys is None:
                raise
            if now - keys.fetched_at >= self.policy.keys_max_age_seconds:
                raise
            LOGGER.warning("OIDC key set refresh failed; keeping the last good copy")
            return keys
        return self._keys

    def _fetch_metadata(self) -> _Metadata:
        document = self._get_json(self.metadata_url, "OIDC metadata")
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise OidcUnavailableError("the OIDC metadata lacks issuer or jwks_uri")
        jitter = self.policy.metadata_jitter_seconds
        lifetime = self.policy.metadata_refresh_seconds + random.uniform(-jitter, jitter)  # noqa: S311
        now = self._clock()
        return _Metadata(issuer, jwks_uri, fetched_at=now, refresh_at=now + lifetime)

    def _fetch_keys(self, jwks_uri: str) -> dict[str, PyJWK]:
        """The RSA signing keys of the set by ``kid`` (other key types and uses are ignored:
        only RS256 is ever accepted)."""
        document = self._get_json(jwks_uri, "OIDC key set")
        keys: dict[str, PyJWK] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA":
                continue
            if entry.get("use") not in (None, "sig") or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = PyJWK(entry, algorithm="RS256")
            except jwt.PyJWTError:
                LOGGER.warning("OIDC key %r is not a usable RSA key; ignored", entry["kid"][:64])
        if not keys:
            raise OidcUnavailableError("the OIDC key set holds no RSA signing key")
        return keys

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - https or loopback (Settings)
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=self._timeout) as response:
                document = json.loads(response.read())
        except (OSError, ValueError) as error:
            raise OidcUnavailableError(f"the {what} could not be fetched") from error
        if not isinstance(document, dict):
            raise OidcUnavailableError(f"the {what} is not a JSON object")
        return document


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the keys come from the configured provider, nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
