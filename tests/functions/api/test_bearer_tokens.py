"""Entra ID bearer tokens over real HTTP: the API pointed at the local token issuer's metadata
exactly as it is pointed at the tenant's in Azure, so every rule runs the real path (header ->
algorithm -> kid -> JWKS -> signature -> claims -> client -> role) before the body is read.

Each refusal is checked for its status, its problem type (the rule), the RFC 6750 challenge, a
body that never repeats the token, and a start request that reached neither ACS nor the registry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime.processes import Azurite
from local_runtime.token_issuer import LOCAL_API_ROLE, TokenIssuer
from recording_pipeline.api.request_guard import MAX_BODY_BYTES
from tests.functions.api.test_api_recordings import acs_recordings_of
from tests.functions.api.test_request_guard import partial_request
from tests.functions.stack import (
    FUNCTION_KEY,
    ApiServer,
    entra_environment,
    stack_environment,
    start_api,
    unique_table_name,
)
from tests.support.emulator import RunningEmulator

OTHER_TENANT = "99999999-0000-4000-8000-000000000099"
OTHER_CLIENT = "99999999-0000-4000-8000-0000000000c9"


@pytest.fixture(scope="module")
def entra_issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as running:
        yield running


def serve(environ: dict[str, str]) -> Iterator[ApiServer]:
    server = start_api(environ)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def entra_api(
    module_emulator: RunningEmulator, azurite: Azurite, entra_issuer: TokenIssuer
) -> Iterator[ApiServer]:
    """``API_AUTH=entraId`` admitting only the issuer's caller app, with the app role."""
    environ = {
        **stack_environment(module_emulator, azurite, table=unique_table_name()),
        **entra_environment(
            entra_issuer,
            allowed_client_ids=(entra_issuer.caller_client_id,),
            required_role=LOCAL_API_ROLE,
        ),
    }
    yield from serve(environ)


@pytest.fixture(scope="module")
def both_api(
    module_emulator: RunningEmulator, azurite: Azurite, entra_issuer: TokenIssuer
) -> Iterator[ApiServer]:
    environ = {
        **stack_environment(module_emulator, azurite, table=unique_table_name()),
        **entra_environment(entra_issuer, "both"),
    }
    yield from serve(environ)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start(api: ApiServer, emulator: RunningEmulator, **headers: str) -> httpx.Response:
    """Start recording a fresh call with these headers."""
    call = emulator.simulation.create_call(["8:acs:bearer-a"])
    with httpx.Client(base_url=api.base_url, timeout=30) as http:
        response = http.post(
            "/api/recordings",
            json={"serverCallId": call["serverCallId"], "content": "audio"},
            headers=headers,
        )
    response.extensions["server_call_id"] = call["serverCallId"]
    return response


def test_a_valid_token_starts_a_recording_without_any_function_key(
    entra_api: ApiServer, entra_issuer: TokenIssuer, module_emulator: RunningEmulator
) -> None:
    response = start(entra_api, module_emulator, **bearer(entra_issuer.mint()))
    assert response.status_code == 201, response.text
    recording_id = response.json()["recordingId"]
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        listed = http.get("/api/recordings", headers=bearer(entra_issuer.mint()))
    assert listed.status_code == 200, listed.text
    assert recording_id in {item["recordingId"] for item in listed.json()["items"]}


def test_a_v1_token_for_the_application_id_uri_is_admitted(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    claims = entra_issuer.claims(version="1.0")
    assert (claims["iss"], claims["aud"]) == (
        f"https://sts.windows.net/{entra_issuer.tenant_id}/",
        entra_issuer.api_app_id_uri,
    )
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        answer = http.get("/api/recordings", headers=bearer(entra_issuer.sign(claims)))
    assert answer.status_code == 200, answer.text


def test_clock_skew_within_the_leeway_is_tolerated(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    now = int(time.time())
    token = entra_issuer.mint(iat=now - 3600, nbf=now - 3600, exp=now - 10)
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        assert http.get("/api/recordings", headers=bearer(token)).status_code == 200


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"


def alg_none(issuer: TokenIssuer) -> str:
    return unsigned({"alg": "none", "typ": "JWT", "kid": issuer.current_kid}, issuer.claims()) + "."


def hs256_with_public_key(issuer: TokenIssuer) -> str:
    """The classic confusion attack: an HMAC over the token keyed with the published RSA key's
    PEM bytes, which a verifier that lets the token pick the algorithm would accept."""
    signing_input = unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": issuer.current_kid}, issuer.claims()
    )
    mac = hmac.new(issuer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def other_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def expired(issuer: TokenIssuer) -> str:
    now = int(time.time())
    return issuer.mint(iat=now - 7200, nbf=now - 7200, exp=now - 120)


Token = Callable[[TokenIssuer], dict[str, str]]

REFUSALS: dict[str, tuple[Token, int, str, str | None]] = {
    # name: (request headers from the issuer, status, problem kind, WWW-Authenticate error)
    "expired": (lambda i: bearer(expired(i)), 401, "token-expired", "invalid_token"),
    "not-yet-valid": (
        lambda i: bearer(i.mint(nbf=int(time.time()) + 600)),
        401,
        "token-not-yet-valid",
        "invalid_token",
    ),
    "wrong-audience": (
        lambda i: bearer(i.mint(aud="api://another-api")),
        401,
        "token-audience",
        "invalid_token",
    ),
    "wrong-issuer": (
        lambda i: bearer(i.mint(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")),
        401,
        "token-issuer",
        "invalid_token",
    ),
    "other-tenant-tid": (
        lambda i: bearer(i.mint(tid=OTHER_TENANT)),
        401,
        "token-issuer",
        "invalid_token",
    ),
    "missing-exp": (lambda i: bearer(i.mint(exp=None)), 401, "token-claims", "invalid_token"),
    "wrong-client": (
        lambda i: bearer(i.mint(azp=OTHER_CLIENT)),
        403,
        "client-not-allowed",
        "insufficient_scope",
    ),
    "missing-role": (
        lambda i: bearer(i.mint(roles=None)),
        403,
        "role-missing",
        "insufficient_scope",
    ),
    "other-role": (
        lambda i: bearer(i.mint(roles=["Recordings.Read"])),
        403,
        "role-missing",
        "insufficient_scope",
    ),
    "alg-none": (lambda i: bearer(alg_none(i)), 401, "token-algorithm", "invalid_token"),
    "hs256-with-the-public-key": (
        lambda i: bearer(hs256_with_public_key(i)),
        401,
        "token-algorithm",
        "invalid_token",
    ),
    "bad-signature": (
        lambda i: bearer(i.sign(i.claims(), key=other_key())),
        401,
        "token-signature",
        "invalid_token",
    ),
    "garbage": (lambda i: bearer("not-a-jwt"), 401, "token-malformed", "invalid_token"),
    "function-key-only": (
        lambda i: {"x-functions-key": FUNCTION_KEY},
        401,
        "token-missing",
        None,
    ),
    "basic-scheme": (
        lambda i: {"Authorization": "Basic dXNlcjpwYXNz"},
        401,
        "token-missing",
        None,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_every_broken_rule_is_refused_by_name_and_changes_nothing(
    entra_api: ApiServer,
    entra_issuer: TokenIssuer,
    module_emulator: RunningEmulator,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    headers_of, status, kind, error = REFUSALS[case]
    headers = headers_of(entra_issuer)
    caplog.set_level(logging.WARNING, logger="recording_pipeline.api.request_guard")

    response = start(entra_api, module_emulator, **headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:acs-call-recording:problem:{kind}"
    assert problem["field"] == "Authorization"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert (f'error="{error}"' in challenge) if error else challenge == "Bearer"
    assert acs_recordings_of(module_emulator, response.extensions["server_call_id"]) == []
    presented = headers.get("Authorization", "").partition(" ")[2]
    if presented:
        assert presented not in response.text + str(response.headers)
        assert presented not in caplog.text
    assert f"API request refused: {kind}" in caplog.text


def test_a_token_in_the_query_string_is_refused_even_when_valid(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    token = entra_issuer.mint()
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        response = http.get("/api/recordings", params={"access_token": token})
        also_header = http.get(
            "/api/recordings", params={"access_token": token}, headers=bearer(token)
        )
    for answer in (response, also_header):
        assert answer.status_code == 401
        assert answer.json()["type"].endswith(":token-in-query")
        assert 'error="invalid_request"' in answer.headers["www-authenticate"]
        assert token not in answer.text


def test_two_authorization_headers_are_refused(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    token = entra_issuer.mint()
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        response = http.get(
            "/api/recordings",
            headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
        )
    assert response.status_code == 401
    assert response.json()["type"].endswith(":token-malformed")


def test_health_and_callbacks_keep_their_own_rules(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    """Health stays anonymous; callbacks still need ACS's JWT, and an API token is not one."""
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        assert http.get("/api/health").status_code == 200
        callback = http.post("/api/callbacks", json=[], headers=bearer(entra_issuer.mint()))
        assert http.get("/api/openapi.json").status_code == 401
        assert http.get("/api/openapi.json", headers=bearer(entra_issuer.mint())).status_code == 200
    assert callback.status_code == 401
    assert callback.json()["type"].endswith(":unauthorized")


def test_the_token_is_checked_before_a_byte_of_the_body_is_read(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    status, problem = partial_request(
        entra_api,
        "/api/recordings",
        {"Content-Type": "application/json"},
        declared=19_500_000,
        sent=b'{"serverCallId": "' + b"x" * 1000,
    )
    assert (status, problem["type"]) == (401, "urn:acs-call-recording:problem:token-missing")
    status, problem = partial_request(
        entra_api,
        "/api/recordings",
        {"Content-Type": "application/json", **bearer(entra_issuer.mint())},
        declared=MAX_BODY_BYTES + 1,
        sent=b"{",
    )
    assert (status, problem["type"]) == (413, "urn:acs-call-recording:problem:body-too-large")


@pytest.mark.parametrize(
    ("headers_of", "status", "kind"),
    [
        (lambda i: {"x-functions-key": FUNCTION_KEY}, 401, "token-missing"),
        (lambda i: bearer(i.mint()), 401, "unauthorized"),
        (lambda i: {"x-functions-key": "wrong", **bearer(i.mint())}, 401, "unauthorized"),
        (lambda i: {"x-functions-key": FUNCTION_KEY, **bearer(expired(i))}, 401, "token-expired"),
        (lambda i: {"x-functions-key": FUNCTION_KEY, **bearer(i.mint())}, 201, None),
    ],
    ids=["key-only", "token-only", "wrong-key", "key-and-expired-token", "key-and-token"],
)
def test_both_needs_the_key_and_the_token(
    both_api: ApiServer,
    entra_issuer: TokenIssuer,
    module_emulator: RunningEmulator,
    headers_of: Token,
    status: int,
    kind: str | None,
) -> None:
    response = start(both_api, module_emulator, **headers_of(entra_issuer))
    assert response.status_code == status, response.text
    if kind is not None:
        assert response.json()["type"] == f"urn:acs-call-recording:problem:{kind}"


def test_function_key_mode_ignores_a_bearer_token(
    api: ApiServer, entra_issuer: TokenIssuer, module_emulator: RunningEmulator
) -> None:
    """``functionKey`` (the default ``api`` fixture) is unchanged: a token is no key."""
    refused = start(api, module_emulator, **bearer(entra_issuer.mint()))
    assert refused.status_code == 401
    assert refused.json()["type"].endswith(":unauthorized")
    assert "www-authenticate" not in refused.headers
    assert start(api, module_emulator, **{"x-functions-key": FUNCTION_KEY}).status_code == 201


@pytest.fixture
def own_issuer_api(
    module_emulator: RunningEmulator, azurite: Azurite
) -> Iterator[tuple[TokenIssuer, ApiServer]]:
    """An API with a key cache of its own and an issuer of its own (rotations stay here)."""
    issuer = TokenIssuer().start()
    environ = {
        **stack_environment(module_emulator, azurite, table=unique_table_name()),
        **entra_environment(issuer),
    }
    server = start_api(environ)
    try:
        yield issuer, server
    finally:
        server.stop()
        issuer.stop()


def test_an_unknown_kid_refreshes_the_keys_once_then_refuses_without_refetching(
    own_issuer_api: tuple[TokenIssuer, ApiServer],
) -> None:
    issuer, server = own_issuer_api
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/api/recordings", headers=bearer(issuer.mint())).status_code == 200
        fetched = issuer.jwks_requests
        answers = [
            http.get(
                "/api/recordings",
                headers=bearer(issuer.sign(issuer.claims(), key=other_key(), kid=f"kid-{n}")),
            )
            for n in range(3)
        ]
    assert [a.json()["type"].rsplit(":", 1)[1] for a in answers] == ["token-signing-key"] * 3
    assert issuer.jwks_requests == fetched + 1  # one refresh, then the 5-minute cooldown


def test_a_rolled_over_signing_key_is_accepted_on_first_use(
    own_issuer_api: tuple[TokenIssuer, ApiServer],
) -> None:
    issuer, server = own_issuer_api
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/api/recordings", headers=bearer(issuer.mint())).status_code == 200
        issuer.rotate()
        assert http.get("/api/recordings", headers=bearer(issuer.mint())).status_code == 200
    assert issuer.jwks_requests == 2


def test_unreachable_keys_are_a_503_to_retry_not_a_refusal(
    own_issuer_api: tuple[TokenIssuer, ApiServer],
) -> None:
    issuer, server = own_issuer_api
    issuer.outage = True
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.get("/api/recordings", headers=bearer(issuer.mint()))
    assert response.status_code == 503
    assert response.json()["type"].endswith(":oidc-unavailable")
    assert response.headers["retry-after"] == "5"


# Header values an HTTP client can send: visible ASCII, inner spaces and tabs (h11 refuses a
# value with blanks around it).
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=300
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    value=st.one_of(
        HEADER_TEXT,
        HEADER_TEXT.map(lambda text: f"Bearer {text}"),
        st.lists(st.text(alphabet="ABCxyz019-_=", max_size=40), min_size=2, max_size=5).map(
            lambda parts: "Bearer " + ".".join(parts)
        ),
    ).map(lambda value: value.strip(" \t"))
)
def test_no_authorization_header_value_is_ever_a_server_error(
    entra_api: ApiServer, value: str
) -> None:
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        response = http.get("/api/recordings", headers={"Authorization": value})
    assert response.status_code == 401, response.text
    problem = response.json()
    assert problem["type"].split(":")[-1].startswith("token-")
    assert response.headers["www-authenticate"].startswith("Bearer")
    secret = value.partition(" ")[2].strip()
    if len(secret) > 8:
        assert secret not in response.text


def test_a_refused_request_answers_without_touching_the_registry(
    entra_api: ApiServer, entra_issuer: TokenIssuer
) -> None:
    """A refused token reaches no route: the unknown id is not looked up (a 404 would say it
    was)."""
    with httpx.Client(base_url=entra_api.base_url, timeout=30) as http:
        response = http.get(
            f"/api/recordings/{uuid.uuid4().hex}", headers=bearer(expired(entra_issuer))
        )
    assert response.status_code == 401
    assert "server-timing" in response.headers
    assert "registry" not in response.headers["server-timing"]
