"""Each token rule as a property, in process: for any value a claim can take that breaks exactly
one rule, the verifier (over the local issuer's real metadata and keys, signature included)
refuses with that rule's status and problem type, and never admits it. The HTTP path of each
rule is in ``test_bearer_tokens.py``; here hypothesis draws the values."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from local_runtime.token_issuer import LOCAL_API_ROLE, TokenIssuer
from recording_pipeline.api.bearer import LEEWAY_SECONDS, BearerTokenVerifier, TokenRules
from recording_pipeline.api.oidc import ENTRA_KEY_POLICY, OidcKeySource
from recording_pipeline.api.problems import ProblemError

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
TEXT = st.text(min_size=1, max_size=80)


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def verifier(issuer: TokenIssuer) -> BearerTokenVerifier:
    rules = TokenRules(
        tenant_id=issuer.tenant_id,
        audiences=(issuer.api_app_id_uri, issuer.api_client_id),
        allowed_client_ids=frozenset({issuer.caller_client_id}),
        required_role=LOCAL_API_ROLE,
    )
    verifier = BearerTokenVerifier(OidcKeySource(issuer.metadata_url, ENTRA_KEY_POLICY), rules)
    assert verifier.verify(issuer.mint())["azp"] == issuer.caller_client_id  # keys now cached
    return verifier


def refusal(verifier: BearerTokenVerifier, token: str) -> tuple[int, str]:
    with pytest.raises(ProblemError) as raised:
        verifier.verify(token)
    return raised.value.status, raised.value.kind


@PROPERTY
@given(audience=TEXT)
def test_any_other_audience_is_refused(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, audience: str
) -> None:
    assume(audience not in verifier.rules.audiences)
    assert refusal(verifier, issuer.mint(aud=audience)) == (401, "token-audience")


@PROPERTY
@given(issued_by=TEXT)
def test_any_other_issuer_is_refused(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, issued_by: str
) -> None:
    assume(issued_by not in (issuer.issuer, issuer.v1_issuer))
    assert refusal(verifier, issuer.mint(iss=issued_by)) == (401, "token-issuer")


@PROPERTY
@given(seconds_ago=st.integers(min_value=LEEWAY_SECONDS + 2, max_value=10 * 365 * 86400))
def test_any_token_expired_past_the_leeway_is_refused(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, seconds_ago: int
) -> None:
    expired_at = int(time.time()) - seconds_ago
    token = issuer.mint(exp=expired_at, nbf=expired_at - 3600, iat=expired_at - 3600)
    assert refusal(verifier, token) == (401, "token-expired")


@PROPERTY
@given(client=st.uuids().map(str) | TEXT)
def test_any_other_client_is_forbidden(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, client: str
) -> None:
    assume(client.lower() not in verifier.rules.allowed_client_ids)
    assert refusal(verifier, issuer.mint(azp=client)) == (403, "client-not-allowed")


@PROPERTY
@given(roles=st.lists(TEXT, max_size=5) | st.none() | TEXT | st.integers())
def test_roles_without_the_required_one_are_forbidden(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, roles: object
) -> None:
    assume(not (isinstance(roles, list) and LOCAL_API_ROLE in roles))
    assert refusal(verifier, issuer.mint(roles=roles)) == (403, "role-missing")


@PROPERTY
@given(extra_roles=st.lists(TEXT, max_size=5))
def test_the_required_role_among_any_others_is_admitted(
    verifier: BearerTokenVerifier, issuer: TokenIssuer, extra_roles: list[str]
) -> None:
    claims = verifier.verify(issuer.mint(roles=[*extra_roles, LOCAL_API_ROLE]))
    assert LOCAL_API_ROLE in claims["roles"]
