"""Entra ID sign-in for the `recordings` tool (``--auth entra``): an access token for the API.

The token comes from azure-identity's ``DefaultAzureCredential``, which tries, in order, a
service principal from ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET`` (or a
certificate), workload identity, a managed identity (App Service's ``IDENTITY_ENDPOINT``, or the
VM's), ..., then the Azure CLI's login. ``AZURE_TOKEN_CREDENTIALS`` narrows the chain (``make up
API_AUTH=entraId`` sets it to ``ManagedIdentityCredential`` for the local token issuer).

A user signed in with ``az login`` gets a delegated token issued to the Azure CLI's own client
id (``04b07795-8ddb-461a-bbee-02f9e1bf7b46``): Entra ID refuses it with AADSTS65001 until that
client is pre-authorized on the API, and an API that admits only listed clients or an
application role refuses it too. Service-to-service callers use a service principal or a managed
identity instead. The token is held in memory for this one command and never printed.
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

#: The Azure CLI's first-party client id: what a delegated ``az login`` token carries as azp.
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
#: Characters azure-identity accepts in a scope.
SCOPE_CHARACTERS = frozenset(string.ascii_letters + string.digits + ".-_:/")
#: A cached token is renewed this long before it expires.
RENEW_BEFORE_SECONDS = 300


class SignInError(Exception):
    """The credential chain gave no token; the message says why and what to do."""


def scope_problem(scope: str) -> str | None:
    """Why ``scope`` cannot be asked for, or None (``<audience>/.default``)."""
    if not scope or any(char not in SCOPE_CHARACTERS for char in scope):
        return (
            f"{scope!r} is not a scope: use <application ID URI or client id>/.default, "
            "e.g. api://acs-call-recording/.default"
        )
    return None


def scope_of_audience(audience: str) -> str:
    """The scope of an API's audience (the ``API_AUDIENCE`` stack output)."""
    return f"{audience.rstrip('/')}/.default"


class EntraTokens:
    """Tokens for ``scope`` from ``DefaultAzureCredential``, reused until shortly before expiry.

    :keyword credential: any azure-core ``TokenCredential`` (default: ``DefaultAzureCredential``,
        built on first use, so a command that needs no token never loads azure-identity).
    """

    def __init__(self, scope: str, *, credential: Any = None) -> None:
        self.scope = scope
        self._credential = credential
        self._token: str | None = None
        self._expires_on = 0.0

    def token(self) -> str:
        """:raises SignInError: with the credential chain's reason and the likely fix."""
        if self._token is not None and time.time() < self._expires_on - RENEW_BEFORE_SECONDS:
            return self._token
        from azure.core.exceptions import ClientAuthenticationError

        try:
            access = self._credentials().get_token(self.scope)
        except (ClientAuthenticationError, ValueError) as error:
            raise SignInError(_reason(error)) from None
        self._token, self._expires_on = access.token, float(access.expires_on)
        return self._token

    def _credentials(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            # azure-identity logs each failed attempt as a warning; with no handler configured
            # Python prints it on stderr, around the one line this tool says instead.
            logging.getLogger("azure.identity").addHandler(logging.NullHandler())
            logging.getLogger("azure.identity").propagate = False
            self._credential = DefaultAzureCredential()
        return self._credential


def _reason(error: Exception) -> str:
    """One line: what each credential of the chain said (azure-identity lists them on tab-indented
    lines, each followed by troubleshooting links), with a hint for the refusal people meet
    first."""
    message = str(error).strip()
    attempts = [line.strip() for line in message.splitlines() if line.startswith("\t")]
    if attempts:
        text = "; ".join(_without_links(attempt) for attempt in attempts)
    else:
        text = _without_links((message.splitlines() or [type(error).__name__])[0])
    if "AADSTS65001" in message:
        text += (
            f"; the Azure CLI ({AZURE_CLI_CLIENT_ID}) is not pre-authorized on the API: add it "
            "under the API's Expose an API > Authorized client applications, or sign in as a "
            "service principal (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET) or with a "
            "managed identity"
        )
    return text


def _without_links(text: str) -> str:
    """``text`` without its sentences that only point at troubleshooting pages."""
    sentences = [part.strip() for part in text.split(". ")]
    return ". ".join(part for part in sentences if "http" not in part).rstrip(".")


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` to each request (the token is fetched lazily)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        yield request
