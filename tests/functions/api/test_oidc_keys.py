"""The signing-key cache every JWT check shares, over real HTTP to the local token issuer, on a
clock the test moves: Microsoft's caching guidance for Entra ID, held rule by rule."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from local_runtime.http_server import LocalHttpServer
from local_runtime.token_issuer import TokenIssuer
from recording_pipeline.api.oidc import (
    ENTRA_KEY_POLICY,
    OidcKeySource,
    OidcUnavailableError,
    UnknownSigningKeyError,
)

HOUR = 3600.0
BACKOFF = ENTRA_KEY_POLICY.failed_fetch_backoff_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(issuer: TokenIssuer, clock: Clock) -> OidcKeySource:
    return OidcKeySource(issuer.metadata_url, ENTRA_KEY_POLICY, clock=clock)


def test_the_policy_is_microsofts_guidance() -> None:
    """signing-key-rollover: keys refreshed hourly and kept 24 h, metadata every 12 h +- 1 h,
    an unknown kid refreshes at most every 5 minutes."""
    assert ENTRA_KEY_POLICY.keys_refresh_seconds == HOUR
    assert ENTRA_KEY_POLICY.keys_max_age_seconds == 24 * HOUR
    assert ENTRA_KEY_POLICY.metadata_refresh_seconds == 12 * HOUR
    assert ENTRA_KEY_POLICY.metadata_jitter_seconds == HOUR
    assert ENTRA_KEY_POLICY.unknown_kid_cooldown_seconds == 300


def test_keys_are_fetched_once_and_then_served_from_memory(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    kid = issuer.current_kid
    assert keys.cached_key(kid) is None  # nothing fetched yet: the caller must go to a thread
    assert keys.signing_key(kid).key_id == kid
    assert keys.issuer() == issuer.issuer
    assert (issuer.metadata_requests, issuer.jwks_requests) == (1, 1)
    clock.now += HOUR - 1
    assert keys.cached_key(kid) is not None
    assert keys.cached_issuer() == issuer.issuer
    assert keys.signing_key(kid).key_id == kid
    assert (issuer.metadata_requests, issuer.jwks_requests) == (1, 1)
    clock.now += 1
    assert keys.cached_key(kid) is None  # due for its hourly refresh
    keys.signing_key(kid)
    assert issuer.jwks_requests == 2


def test_an_unknown_kid_refreshes_at_most_every_five_minutes(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    keys.signing_key(issuer.current_kid)
    with pytest.raises(UnknownSigningKeyError):
        keys.signing_key("never-published")
    assert issuer.jwks_requests == 2  # one refresh for the unknown kid
    with pytest.raises(UnknownSigningKeyError):
        keys.signing_key("never-published-either")
    assert issuer.jwks_requests == 2  # within the cooldown: refused without a fetch
    rotated = issuer.rotate()
    clock.now += 299
    with pytest.raises(UnknownSigningKeyError):
        keys.signing_key(rotated)
    assert issuer.jwks_requests == 2
    clock.now += 1
    assert keys.signing_key(rotated).key_id == rotated  # a rollover is picked up after it
    assert issuer.jwks_requests == 3


def test_a_rolled_over_key_is_picked_up_on_first_use(
    issuer: TokenIssuer, keys: OidcKeySource
) -> None:
    keys.signing_key(issuer.current_kid)
    rotated = issuer.rotate()
    assert keys.signing_key(rotated).key_id == rotated
    assert issuer.jwks_requests == 2


def test_keys_outlive_an_outage_for_24_hours_and_no_longer(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    kid = issuer.current_kid
    keys.signing_key(kid)
    issuer.outage = True
    clock.now += 23 * HOUR
    assert keys.signing_key(kid).key_id == kid  # refresh failed: the last good set is kept
    assert "keeping the last good copy" in caplog.text
    clock.now += HOUR
    with pytest.raises(OidcUnavailableError):
        keys.signing_key(kid)
    issuer.outage = False
    clock.now += BACKOFF  # the next attempt waits out the back-off of the failed one
    assert keys.signing_key(kid).key_id == kid


def test_an_outage_costs_one_fetch_per_backoff_not_one_per_request(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    """While the endpoint fails, every request shares one attempt a minute and gets the last
    good keys in between, from memory (no thread, no lock, no timeout to wait out)."""
    kid = issuer.current_kid
    keys.signing_key(kid)
    issuer.outage = True
    clock.now += HOUR  # due for the hourly refresh
    for _ in range(20):
        assert keys.signing_key(kid).key_id == kid
    assert issuer.jwks_requests == 2  # the first fetch and one failed refresh
    assert keys.cached_key(kid) is not None
    with pytest.raises(OidcUnavailableError):  # a rollover cannot be checked: retry, no fetch
        keys.signing_key("rolled-over-during-the-outage")
    clock.now += BACKOFF - 1
    assert keys.signing_key(kid).key_id == kid
    assert issuer.jwks_requests == 2
    clock.now += 1
    assert keys.cached_key(kid) is None  # the back-off is over: the next request tries again
    assert keys.signing_key(kid).key_id == kid
    assert issuer.jwks_requests == 3
    issuer.outage = False
    clock.now += BACKOFF
    keys.signing_key(kid)
    assert issuer.jwks_requests == 4
    assert keys.cached_key(kid) is not None


def test_a_metadata_outage_costs_one_fetch_per_backoff(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    keys.issuer()
    issuer.outage = True
    clock.now += 13 * HOUR + 1  # past the refresh, whatever the jitter
    for _ in range(20):
        assert keys.issuer() == issuer.issuer
    assert issuer.metadata_requests == 2
    assert keys.cached_issuer() == issuer.issuer
    clock.now += BACKOFF
    assert keys.cached_issuer() is None
    keys.issuer()
    assert issuer.metadata_requests == 3


def test_without_a_cached_copy_a_failing_endpoint_is_not_retried_until_the_backoff_ends(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    issuer.outage = True
    for _ in range(20):
        with pytest.raises(OidcUnavailableError):
            keys.signing_key(issuer.current_kid)
    assert (issuer.metadata_requests, issuer.jwks_requests) == (1, 0)
    issuer.outage = False
    clock.now += BACKOFF
    assert keys.signing_key(issuer.current_kid).key_id == issuer.current_kid


def test_an_unknown_kid_during_an_outage_is_unavailable_not_unknown(
    issuer: TokenIssuer, keys: OidcKeySource
) -> None:
    """The keys cannot be checked, so the caller is told to retry (503), not that the kid is
    bogus: a rollover during an outage must not look like a forgery."""
    keys.signing_key(issuer.current_kid)
    issuer.outage = True
    with pytest.raises(OidcUnavailableError):
        keys.signing_key(issuer.rotate())


def test_metadata_is_refreshed_after_12_hours_with_jitter(
    issuer: TokenIssuer, keys: OidcKeySource, clock: Clock
) -> None:
    keys.issuer()
    clock.now += 11 * HOUR - 1
    keys.issuer()
    assert issuer.metadata_requests == 1
    clock.now += 2 * HOUR + 2
    keys.issuer()
    assert issuer.metadata_requests == 2


def test_a_metadata_outage_keeps_the_last_good_copy_but_a_first_fetch_fails(
    issuer: TokenIssuer, clock: Clock
) -> None:
    issuer.outage = True
    cold = OidcKeySource(issuer.metadata_url, ENTRA_KEY_POLICY, clock=clock)
    with pytest.raises(OidcUnavailableError, match="OIDC metadata could not be fetched"):
        cold.issuer()
    issuer.outage = False
    clock.now += BACKOFF
    assert cold.issuer() == issuer.issuer
    issuer.outage = True
    clock.now += 14 * HOUR
    assert cold.issuer() == issuer.issuer
    clock.now += 10 * HOUR  # 24 hours old: no longer trusted
    with pytest.raises(OidcUnavailableError):
        cold.issuer()


def test_only_rsa_signing_keys_are_taken_from_the_key_set(
    issuer: TokenIssuer, keys: OidcKeySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HMAC (``oct``) key or an encryption key in the set is never a verification key."""
    rsa_key = issuer.jwks()["keys"][0]
    hmac_key = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"}
    encryption = {**rsa_key, "kid": "enc", "use": "enc"}
    monkeypatch.setattr(issuer, "jwks", lambda: {"keys": [hmac_key, encryption, rsa_key]})
    assert keys.signing_key(rsa_key["kid"]).algorithm_name == "RS256"
    for kid in ("hmac", "enc"):
        with pytest.raises(UnknownSigningKeyError):
            keys.signing_key(kid)
    monkeypatch.setattr(issuer, "jwks", lambda: {"keys": [hmac_key]})
    with pytest.raises(OidcUnavailableError, match="no RSA signing key"):
        OidcKeySource(issuer.metadata_url, ENTRA_KEY_POLICY).signing_key("hmac")


def test_a_redirect_is_never_followed(issuer: TokenIssuer) -> None:
    """The keys come from the configured provider only."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", issuer.metadata_url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    with LocalHttpServer(Redirect) as redirecting:
        source = OidcKeySource(f"{redirecting.base_url}/meta", ENTRA_KEY_POLICY)
        with pytest.raises(OidcUnavailableError):
            source.issuer()
    assert issuer.metadata_requests == 0
