"""Entra ID bearer tokens for the recording API (``API_AUTH`` ``entraId`` or ``both``).

A service calls the API with ``Authorization: Bearer <access token>`` issued by the tenant for
the API's audience. The app checks every token itself (App Service Authentication is not used:
see the README's "API authentication"), in this order, and refuses at the first broken rule:

1. the token is in the ``Authorization`` header with the ``Bearer`` scheme, never in the URL
   (an ``access_token`` query parameter is refused: URLs end up in logs);
2. it is a JWT whose header says ``RS256`` (``none``, ``HS256`` and every other algorithm are
   refused before any key is looked at, so an HMAC "signed" with the public key goes nowhere);
3. its ``kid`` is one of the tenant's published signing keys (``oidc.OidcKeySource`` with
   Microsoft's caching guidance: an unknown ``kid`` refreshes the keys at most every 5 minutes);
4. the RS256 signature verifies with that key;
5. ``exp`` and ``nbf`` hold, with :data:`LEEWAY_SECONDS` of clock skew;
6. ``aud`` is one of ``API_AUDIENCE`` (application ID URI and/or client id: v1.0 tokens carry
   what the client asked for, v2.0 tokens the client id);
7. ``iss`` is the tenant's: the issuer the metadata names (v2.0) or ``https://sts.windows.net/
   {tenant}/`` (v1.0); a ``tid`` claim, when present, must be the tenant too;
8. with ``API_ALLOWED_CLIENT_IDS``, the calling application (``azp`` in v2.0, ``appid`` in v1.0)
   is listed (else 403);
9. with ``API_REQUIRED_ROLE``, the ``roles`` claim holds that app role (else 403).

Rules 1-7 fail with 401 ``WWW-Authenticate: Bearer error="invalid_token"`` (or
``invalid_request`` for a token in the URL, and no error code when no token came at all, as RFC
6750 asks); 8-9 with 403 ``error="insufficient_scope"``. Each refusal is its own problem type
(``token-expired``, ``token-audience``, ``client-not-allowed``, ...), so a caller sees which
rule it broke; the token itself is never echoed or logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.api_jwk import PyJWK

from recording_pipeline.api.oidc import (
    ENTRA_KEY_POLICY,
    OidcKeySource,
    UnknownSigningKeyError,
)
from recording_pipeline.api.problems import ProblemError, token_refused
from recording_pipeline.settings import Settings

LOGGER = logging.getLogger(__name__)

ALGORITHM = "RS256"
#: Clock skew tolerated on ``exp`` and ``nbf`` between Entra ID and this app.
LEEWAY_SECONDS = 30
#: Entra ID's v1.0 access tokens carry this issuer.
V1_ISSUER = "https://sts.windows.net/{tenant}/"
#: Longer than any Entra ID access token; a header past it is refused without parsing.
MAX_TOKEN_CHARS = 16 * 1024
QUERY_TOKEN_PARAMETER = "access_token"  # noqa: S105 - a parameter name (RFC 6750)
#: What a refusal may repeat of an unverified header value (an algorithm name).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]{1,16}")
_CLIENT_ID = re.compile(r"[0-9A-Fa-f-]{36}")


@dataclass(frozen=True)
class TokenRules:
    """What a token must say to be admitted (from the ``API_*`` settings)."""

    tenant_id: str
    audiences: tuple[str, ...]
    allowed_client_ids: frozenset[str] = frozenset()
    required_role: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenRules:
        if settings.api_tenant_id is None or not settings.api_audiences:
            raise ValueError("bearer tokens need API_TENANT_ID and API_AUDIENCE")
        return cls(
            tenant_id=settings.api_tenant_id,
            audiences=settings.api_audiences,
            allowed_client_ids=settings.api_allowed_client_ids,
            required_role=settings.api_required_role,
        )

    @property
    def v1_issuer(self) -> str:
        return V1_ISSUER.format(tenant=self.tenant_id)


def _invalid_token(kind: str, detail: str, description: str) -> ProblemError:
    return token_refused(
        401, kind, detail, f'Bearer error="invalid_token", error_description="{description}"'
    )


def _forbidden(kind: str, detail: str, description: str) -> ProblemError:
    return token_refused(
        403, kind, detail, f'Bearer error="insufficient_scope", error_description="{description}"'
    )


def presented_token(headers: list[str], query: Mapping[str, str]) -> str:
    """The bearer token of a request's ``Authorization`` header values and query parameters.

    :raises ProblemError: 401 when there is none, more than one, or one in the URL.
    """
    if QUERY_TOKEN_PARAMETER in query:
        raise token_refused(
            401,
            "token-in-query",
            "A token in the URL (access_token) is not accepted: URLs are logged. Send it in "
            "the 'Authorization: Bearer <token>' header.",
            'Bearer error="invalid_request", error_description="token in the URL"',
        )
    if not headers:
        raise token_refused(
            401,
            "token-missing",
            "An Entra ID access token is required: send 'Authorization: Bearer <token>'.",
            "Bearer",
        )
    if len(headers) > 1:
        raise token_refused(
            401,
            "token-malformed",
            "Send one Authorization header, not several.",
            'Bearer error="invalid_request", error_description="several Authorization headers"',
        )
    scheme, _, token = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise token_refused(
            401,
            "token-missing",
            "The Authorization header must use the Bearer scheme with an Entra ID access token.",
            "Bearer",
        )
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid_token(
            "token-malformed",
            f"The bearer token must be a JWT of 1-{MAX_TOKEN_CHARS} characters.",
            "not a JWT",
        )
    return token


class BearerTokenVerifier:
    """The rules of the module docstring over one tenant's published keys.

    :param keys: the tenant's metadata and keys (``API_OIDC_METADATA_URL``).
    :param rules: the audiences, and optionally the clients and role, a token must match.
    """

    def __init__(self, keys: OidcKeySource, rules: TokenRules) -> None:
        self.keys = keys
        self.rules = rules

    @classmethod
    def from_settings(cls, settings: Settings) -> BearerTokenVerifier:
        metadata_url = settings.api_metadata_url
        if metadata_url is None:
            raise ValueError("bearer tokens are not required by these settings")
        keys = OidcKeySource(metadata_url, ENTRA_KEY_POLICY)
        return cls(keys, TokenRules.from_settings(settings))

    def verify_cached(self, token: str) -> dict[str, Any] | None:
        """The claims of an admitted token, checked without any I/O; None when the keys or the
        metadata must be fetched first (then call :meth:`verify`, off the event loop).

        :raises ProblemError: 401/403 naming the broken rule.
        """
        kid = _kid_of_rs256(token)
        issuer = self.keys.cached_issuer()
        key = self.keys.cached_key(kid)
        if issuer is None or key is None:
            return None
        return self._claims(token, key, issuer)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of an admitted token; may fetch the metadata or keys (blocking).

        :raises ProblemError: 401/403 naming the broken rule.
        :raises OidcUnavailableError: the keys cannot be fetched and none usable are cached.
        """
        kid = _kid_of_rs256(token)
        try:
            key = self.keys.signing_key(kid)
        except UnknownSigningKeyError:
            raise _invalid_token(
                "token-signing-key",
                "The token's key id (kid) is not one of the tenant's published signing keys.",
                "unknown signing key",
            ) from None
        return self._claims(token, key, self.keys.issuer())

    def _claims(self, token: str, key: PyJWK, issuer: str) -> dict[str, Any]:
        rules = self.rules
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=list(rules.audiences),
                issuer=[issuer, rules.v1_issuer],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as error:
            raise _decode_refusal(error, rules, issuer) from None
        if claims.get("tid", rules.tenant_id) != rules.tenant_id:
            raise _invalid_token(
                "token-issuer",
                f"The token was issued for another tenant; this API accepts tenant "
                f"{rules.tenant_id} (API_TENANT_ID) only.",
                "wrong tenant",
            )
        _check_client(claims, rules)
        _check_role(claims, rules)
        return claims


def _kid_of_rs256(token: str) -> str:
    """The ``kid`` of a token whose header says RS256; any other header is refused here."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise _invalid_token(
            "token-malformed", "The bearer token is not a JWT.", "not a JWT"
        ) from None
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        plain = isinstance(algorithm, str) and _PLAIN_NAME.fullmatch(algorithm)
        shown = algorithm if plain else "?"
        raise _invalid_token(
            "token-algorithm",
            f"The token's algorithm {shown!r} is not accepted: tokens must be signed {ALGORITHM} "
            "with one of the tenant's published keys.",
            "algorithm not accepted",
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid_token(
            "token-signing-key", "The token's header names no key id (kid).", "no key id"
        )
    return kid


def _decode_refusal(error: jwt.InvalidTokenError, rules: TokenRules, issuer: str) -> ProblemError:
    """The problem of a token PyJWT refused (signature first, then the claims)."""
    if isinstance(error, jwt.InvalidSignatureError):
        return _invalid_token(
            "token-signature",
            "The token's signature does not verify with the tenant's key it names.",
            "bad signature",
        )
    if isinstance(error, jwt.ExpiredSignatureError):
        return _invalid_token("token-expired", "The token has expired.", "token expired")
    if isinstance(error, jwt.ImmatureSignatureError | jwt.InvalidIssuedAtError):
        return _invalid_token(
            "token-not-yet-valid",
            "The token is not valid yet (nbf or iat in the future).",
            "token not yet valid",
        )
    if isinstance(error, jwt.InvalidAudienceError):
        return _invalid_token(
            "token-audience",
            "The token's audience (aud) is not this API: it must be one of "
            f"{', '.join(rules.audiences)} (API_AUDIENCE).",
            "wrong audience",
        )
    if isinstance(error, jwt.InvalidIssuerError):
        return _invalid_token(
            "token-issuer",
            f"The token's issuer (iss) is not tenant {rules.tenant_id}: it must be {issuer} or "
            f"{rules.v1_issuer}.",
            "wrong issuer",
        )
    if isinstance(error, jwt.MissingRequiredClaimError):
        return _invalid_token(
            "token-claims", f"The token lacks the {error.claim!r} claim.", "missing claim"
        )
    detail = f"The bearer token is not a valid JWT ({type(error).__name__})."
    return _invalid_token("token-malformed", detail, "not a JWT")


def _check_client(claims: dict[str, Any], rules: TokenRules) -> None:
    if not rules.allowed_client_ids:
        return
    client = claims.get("azp", claims.get("appid"))
    if not isinstance(client, str) or client.lower() not in rules.allowed_client_ids:
        shown = client if isinstance(client, str) and _CLIENT_ID.fullmatch(client) else None
        raise _forbidden(
            "client-not-allowed",
            f"The calling application ({shown or 'no azp/appid claim'}) is not one of the "
            "clients this API admits (API_ALLOWED_CLIENT_IDS).",
            "client not allowed",
        )


def _check_role(claims: dict[str, Any], rules: TokenRules) -> None:
    if rules.required_role is None:
        return
    roles = claims.get("roles")
    if not isinstance(roles, list) or rules.required_role not in roles:
        raise _forbidden(
            "role-missing",
            f"The token does not hold the app role {rules.required_role!r} "
            "(API_REQUIRED_ROLE) in its roles claim.",
            "role missing",
        )
