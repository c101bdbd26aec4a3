"""The `recordings` tool's Entra ID sign-in without a network: what it asks azure-identity for,
how long it keeps a token, and the one line a failed sign-in becomes (built from azure-identity's
own chained-credential message, so a change in its format shows here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ChainedTokenCredential, CredentialUnavailableError
from hypothesis import given
from hypothesis import strategies as st

from recordings_cli.cli import stack_outputs
from recordings_cli.client import EXIT_REFUSED, CliError, RecordingsClient
from recordings_cli.signin import (
    AZURE_CLI_CLIENT_ID,
    RENEW_BEFORE_SECONDS,
    SCOPE_CHARACTERS,
    BearerAuth,
    EntraTokens,
    SignInError,
    scope_of_audience,
    scope_problem,
)

SCOPE = "api://acs-call-recording/.default"


class CountingCredential:
    """A TokenCredential that hands out numbered tokens living ``lifetime`` seconds."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime))


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        raise self.error


def test_a_token_is_asked_for_the_scope_once_and_reused_while_fresh() -> None:
    credential = CountingCredential(lifetime=3600)
    tokens = EntraTokens(SCOPE, credential=credential)
    assert [tokens.token() for _ in range(3)] == ["token-1"] * 3
    assert credential.scopes == [(SCOPE,)]


def test_a_token_close_to_expiry_is_renewed() -> None:
    credential = CountingCredential(lifetime=RENEW_BEFORE_SECONDS - 10)
    tokens = EntraTokens(SCOPE, credential=credential)
    assert (tokens.token(), tokens.token()) == ("token-1", "token-2")


def test_a_refused_chain_becomes_one_line_per_credential_without_links() -> None:
    chain = ChainedTokenCredential(
        Refusing(
            CredentialUnavailableError(
                "EnvironmentCredential authentication unavailable. Environment variables are "
                "not fully configured. Visit https://aka.ms/troubleshoot to fix this."
            )
        ),
        Refusing(
            ClientAuthenticationError(
                f"AADSTS65001: The user has not consented to use the application with ID "
                f"'{AZURE_CLI_CLIENT_ID}'. Trace ID: 1"
            )
        ),
    )
    with pytest.raises(SignInError) as raised:
        EntraTokens(SCOPE, credential=chain).token()
    reason = str(raised.value)
    assert "\n" not in reason
    assert "http" not in reason
    assert "EnvironmentCredential authentication unavailable" in reason
    assert "AADSTS65001" in reason
    assert "Authorized client applications" in reason  # the fix for the refusal met first


def test_a_scope_azure_identity_refuses_is_a_sign_in_error() -> None:
    with pytest.raises(SignInError, match="scope"):
        EntraTokens(SCOPE, credential=Refusing(ValueError("invalid scope"))).token()


@given(st.text(alphabet=sorted(SCOPE_CHARACTERS), min_size=1))
def test_scopes_of_the_allowed_characters_are_accepted(scope: str) -> None:
    assert scope_problem(scope) is None


@given(st.text(min_size=1).filter(lambda s: any(c not in SCOPE_CHARACTERS for c in s)))
def test_any_other_character_is_refused_with_an_example(scope: str) -> None:
    problem = scope_problem(scope)
    assert problem is not None
    assert "/.default" in problem


@pytest.mark.parametrize(
    ("audience", "scope"),
    [
        ("api://acs-call-recording", SCOPE),
        ("api://acs-call-recording/", SCOPE),
        ("11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-555555555555/.default"),
    ],
)
def test_the_scope_of_an_audience_is_it_with_default(audience: str, scope: str) -> None:
    assert scope_of_audience(audience) == scope


def test_the_bearer_goes_in_the_header_next_to_a_function_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    credential = CountingCredential(lifetime=3600)
    client = RecordingsClient(
        "http://127.0.0.1:9",
        "the-key",
        transport=httpx.MockTransport(answer),
        auth=BearerAuth(EntraTokens(SCOPE, credential=credential).token),
    )
    client.list_page({})
    client.list_page({})
    client.close()
    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1"] * 2
    assert {r.headers["x-functions-key"] for r in seen} == {"the-key"}


def test_a_failed_sign_in_sends_nothing_and_exits_refused() -> None:
    seen: list[httpx.Request] = []
    client = RecordingsClient(
        "http://127.0.0.1:9",
        None,
        transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)),
        auth=BearerAuth(EntraTokens(SCOPE, credential=Refusing(ValueError("no scope"))).token),
    )
    with pytest.raises(CliError) as raised:
        client.list_page({})
    client.close()
    assert raised.value.exit_code == EXIT_REFUSED
    assert str(raised.value).startswith("Entra ID sign-in failed: ")
    assert seen == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
    ],
)
def test_stack_outputs_that_cannot_be_used_say_why(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        stack_outputs(path)


def test_stack_outputs_keep_the_strings(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"API_AUDIENCE": "api://x", "COUNT": 3, "SECRET": None}))
    assert stack_outputs(path) == {"API_AUDIENCE": "api://x"}
