"""Hostile input against the API's routes over HTTP: never a 5xx, never a traceback, and a
refused request writes nothing to the registry.

The API is the callback API of ``tests/functions/conftest.py`` (real uvicorn, the emulator for
ACS, Azurite for the registry, a local OIDC issuer for callback tokens).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.data.tables import TableClient
from hypothesis import given
from hypothesis import strategies as st

from tests.functions.fuzz.strategies import (
    FUZZ,
    bodies,
    hostile_text,
    json_values,
    mutated,
    render,
)
from tests.functions.stack import FUNCTION_KEY, ApiServer, OidcIssuer, state_changed_event

KEYED = {"x-functions-key": FUNCTION_KEY}
VALID_START = {
    "serverCallId": "no-such-call",
    "content": "audio",
    "channel": "unmixed",
    "audioChannelParticipantOrdering": ["8:acs:a"],
    "channelAffinity": [{"participant": "8:acs:b", "channel": 1}],
    "recordingStateCallbackUrl": "https://example.com/api/callbacks",
}
VALID_DELIVERY = [state_changed_event("not-started-here+/=", "active")]
#: What a URL can carry: any text, its lone surrogates replaced (they have no UTF-8 form).
url_text = hostile_text.map(lambda text: text.encode("utf-8", "replace").decode("utf-8"))
#: Short enough for a URL (a client refuses a query over 64 KiB before sending it).
tokens = st.one_of(
    url_text,
    st.one_of(json_values, mutated({"pk": "cmVjLTI=", "rk": "cmVjb3JkaW5n"})).map(
        lambda value: base64.urlsafe_b64encode(render(value).encode()).decode()
    ),
).map(lambda token: token[:8000])
#: Ids of any length up to the API's 1,024 characters, where a key limit may hide.
path_ids = st.builds(
    lambda text, times: ((text or "+") * times)[:1024], hostile_text, st.integers(1, 200)
)


@pytest.fixture(scope="module")
def http(callback_api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=callback_api.base_url, timeout=30) as client:
        yield client


def rows(table: TableClient) -> list[tuple[str, str, str]]:
    return sorted(
        (e["PartitionKey"], e["RowKey"], e.metadata["etag"]) for e in table.list_entities()
    )


def assert_answered_safely(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text


@FUZZ
@given(body=bodies(VALID_START))
def test_start_route(http: httpx.Client, callback_registry: TableClient, body: bytes) -> None:
    before = rows(callback_registry)
    response = http.post(
        "/api/recordings", content=body, headers={**KEYED, "content-type": "application/json"}
    )
    assert_answered_safely(response)
    assert response.status_code != 201  # ACS does not know the call
    assert rows(callback_registry) == before


@FUZZ
@given(body=bodies(VALID_DELIVERY))
def test_callbacks_route(
    http: httpx.Client, issuer: OidcIssuer, callback_registry: TableClient, body: bytes
) -> None:
    before = rows(callback_registry)
    response = http.post(
        "/api/callbacks",
        content=body,
        headers={"Authorization": f"Bearer {issuer.token()}", "content-type": "application/json"},
    )
    assert_answered_safely(response)
    if response.status_code == 200:
        assert response.json()["recorded"] == 0  # no event is about a recording anyone knows
    assert rows(callback_registry) == before


@FUZZ
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "continuationToken": tokens,
            "serverCallId": url_text,
            "state": url_text,
            "archiveStatus": url_text,
            "limit": st.one_of(st.integers(), url_text),
        },
    )
)
def test_list_route(http: httpx.Client, params: dict[str, Any]) -> None:
    assert_answered_safely(http.get("/api/recordings", params=params, headers=KEYED))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    recording_id=path_ids,
    suffix=st.sampled_from(["", "/pause", "/resume", "/archive/manifest", "/archive/files/x"]),
)
def test_recording_routes(
    http: httpx.Client,
    callback_registry: TableClient,
    method: str,
    recording_id: str,
    suffix: str,
) -> None:
    before = rows(callback_registry)
    encoded = quote(recording_id.encode("utf-8", "surrogatepass"), safe="")
    response = http.request(method, f"/api/recordings/{encoded}{suffix}", headers=KEYED)
    assert_answered_safely(response)
    assert rows(callback_registry) == before
