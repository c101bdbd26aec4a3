"""A local stand-in for an Entra ID tenant: OIDC metadata and signing keys served on loopback,
and access tokens signed with them, so the API's bearer-token path runs with no Azure at all.

What it serves (one threaded HTTP server on a free ``127.0.0.1`` port):

- ``/{tenant}/v2.0/.well-known/openid-configuration``: the metadata, its ``issuer`` and
  ``jwks_uri`` shaped as Entra ID's (``{base}/{tenant}/v2.0``,
  ``{base}/{tenant}/discovery/v2.0/keys``);
- ``/{tenant}/discovery/v2.0/keys``: the public keys (RS256, one ``kid`` each; :meth:`rotate`
  adds one, as a key rollover does);
- ``/msi/token``: App Service's managed-identity endpoint (``GET ?api-version=2019-08-01&resource=``
  with the ``X-IDENTITY-HEADER`` secret), which azure-identity's ``ManagedIdentityCredential``
  (and so ``DefaultAzureCredential``) calls when ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are
  set. The ``recordings`` CLI signs in through it with the real SDK, as it would in Azure.

Tokens are shaped as Entra ID issues them for an API: a v2.0 token carries the API's client id
as ``aud``, ``azp`` for the caller and the ``https://login.microsoftonline.com/{tenant}/v2.0``-shaped
issuer (here on loopback); a v1.0 token the requested application ID URI, ``appid`` and
``https://sts.windows.net/{tenant}/``. :meth:`TokenIssuer.mint` builds any of them with any claim
changed, for tests of each rule. Nothing here is secret beyond a local stack: the keys live in
memory and die with the process.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local_runtime.http_server import LocalHttpServer

#: The local stack's tenant, API and caller (fixed GUIDs, recognisable in logs).
LOCAL_TENANT_ID = "00000000-0000-4000-8000-00000000e1d0"
LOCAL_API_CLIENT_ID = "00000000-0000-4000-8000-0000000000a1"
LOCAL_API_APP_ID_URI = "api://acs-call-recording-local"
LOCAL_CALLER_CLIENT_ID = "00000000-0000-4000-8000-0000000000c1"
LOCAL_API_ROLE = "Recordings.ReadWrite"
IDENTITY_PATH = "/msi/token"
TOKEN_LIFETIME_SECONDS = 3600
#: The issuer of Entra ID's v1.0 access tokens.
V1_ISSUER = "https://sts.windows.net/{tenant}/"


@dataclass
class TokenIssuer:
    """An OpenID provider on loopback whose tokens the API accepts when pointed at its metadata.

    :param tenant_id: the ``tid`` and the tenant segment of every path and issuer.
    :param api_client_id: the API's client id (the ``aud`` of v2.0 tokens).
    :param api_app_id_uri: the API's application ID URI (the ``aud`` of v1.0 tokens).
    :param caller_client_id: the ``azp``/``appid`` of the tokens the identity endpoint issues.
    :param roles: their ``roles``.
    """

    tenant_id: str = LOCAL_TENANT_ID
    api_client_id: str = LOCAL_API_CLIENT_ID
    api_app_id_uri: str = LOCAL_API_APP_ID_URI
    caller_client_id: str = LOCAL_CALLER_CLIENT_ID
    roles: tuple[str, ...] = (LOCAL_API_ROLE,)
    #: The secret a managed-identity request must present (``IDENTITY_HEADER``).
    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: ``(kid, private key)`` in publication order; tokens are signed with the last one.
    keys: list[tuple[str, Any]] = field(default_factory=list)
    #: Requests for the metadata and the key set, answered or not (an outage counts too).
    metadata_requests: int = 0
    jwks_requests: int = 0
    #: True: every path answers 503, as the tenant's endpoints do in an outage.
    outage: bool = False
    #: Every token the managed-identity endpoint handed out (tests check none is ever printed).
    issued: list[str] = field(default_factory=list)
    server: LocalHttpServer | None = None

    @property
    def base_url(self) -> str:
        if self.server is None:
            raise RuntimeError("start the token issuer first")
        return self.server.base_url

    @property
    def issuer(self) -> str:
        """The metadata's issuer: what v2.0 tokens carry as ``iss``."""
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return V1_ISSUER.format(tenant=self.tenant_id)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def identity_endpoint(self) -> str:
        """``IDENTITY_ENDPOINT`` for azure-identity's App Service managed identity."""
        return f"{self.base_url}{IDENTITY_PATH}"

    def start(self) -> TokenIssuer:
        if not self.keys:
            self.rotate()
        self.server = LocalHttpServer(_handler_for(self))
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def rotate(self) -> str:
        """Publish a new signing key (a new ``kid``) and sign with it from now on."""
        kid = secrets.token_hex(8)
        self.keys.append((kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    @property
    def current_kid(self) -> str:
        return self.keys[-1][0]

    def public_pem(self) -> bytes:
        """The current public key as PEM bytes (what an ``HS256``-with-the-public-key forgery
        uses as its HMAC secret)."""
        from cryptography.hazmat.primitives import serialization

        return (
            self.keys[-1][1]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(kid, key) for kid, key in self.keys]}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "token_endpoint": f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "token id_token"],
            "subject_types_supported": ["pairwise"],
        }

    def claims(
        self,
        *,
        version: str = "2.0",
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        issued_at: float | None = None,
        client_id: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """An app-only access token's claims for the API, as Entra ID shapes them per version."""
        issued = int(time.time() if issued_at is None else issued_at)
        caller = self.caller_client_id if client_id is None else client_id
        subject = f"local-sp-{caller}"
        claims: dict[str, Any] = {
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "tid": self.tenant_id,
            "oid": subject,
            "sub": subject,
            "idtyp": "app",
            "ver": version,
            "roles": list(self.roles if roles is None else roles),
        }
        if version == "1.0":
            claims.update(iss=self.v1_issuer, aud=self.api_app_id_uri, appid=caller, appidacr="1")
        else:
            claims.update(iss=self.issuer, aud=self.api_client_id, azp=caller, azpacr="1")
        return claims

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """``claims`` signed RS256 with the current key (or ``key``), ``kid`` in the header."""
        return jwt.encode(
            claims,
            self.keys[-1][1] if key is None else key,
            algorithm="RS256",
            headers={"kid": self.current_kid if kid is None else kid, "typ": "JWT"},
        )

    def mint(self, **changes: Any) -> str:
        """A valid v2.0 token for the API; each keyword replaces (or, as None, removes) a claim,
        so a test breaks exactly one rule: ``mint(aud="api://other")``, ``mint(roles=None)``."""
        claims = self.claims()
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.sign(claims)

    def token_for_resource(self, resource: str) -> dict[str, Any] | None:
        """The managed-identity answer for ``resource`` (the API's application ID URI or client
        id, as Entra ID accepts either), or None for any other resource."""
        if resource.rstrip("/") not in {self.api_app_id_uri, self.api_client_id}:
            return None
        claims = self.claims()
        token = self.sign(claims)
        self.issued.append(token)
        return {
            "access_token": token,
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
        }


def _public_jwk(kid: str, key: Any) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


def _handler_for(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            # Counted before the outage answers: a refetch storm shows in the counts.
            if url.path == urlsplit(issuer.metadata_url).path:
                issuer.metadata_requests += 1
            elif url.path == urlsplit(issuer.jwks_url).path:
                issuer.jwks_requests += 1
            if issuer.outage:
                self._json(503, {"error": "temporarily_unavailable"})
            elif url.path == urlsplit(issuer.metadata_url).path:
                self._json(200, issuer.metadata())
            elif url.path == urlsplit(issuer.jwks_url).path:
                self._json(200, issuer.jwks())
            elif url.path == IDENTITY_PATH:
                self._managed_identity(parse_qs(url.query))
            else:
                self._json(404, {"error": "not_found"})

        def _managed_identity(self, query: dict[str, list[str]]) -> None:
            presented = self.headers.get("X-IDENTITY-HEADER", "")
            if not secrets.compare_digest(presented, issuer.identity_header):
                self._json(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is not valid"})
                return
            resource = (query.get("resource") or [""])[0]
            answer = issuer.token_for_resource(resource)
            if answer is None:
                # App Service answers an unknown resource with a vague 500 (as MSAL notes).
                self._json(
                    500,
                    {
                        "statusCode": 500,
                        "message": f"AADSTS500011: the resource principal named {resource!r} "
                        f"was not found in tenant {issuer.tenant_id}",
                    },
                )
                return
            self._json(200, answer)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return

    return Handler
