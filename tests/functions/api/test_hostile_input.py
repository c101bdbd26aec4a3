"""Hostile input over HTTP: each is a 400 naming the field, never a 500 or a 503, and a row that
is already bad does not take the list (or its own GET) down with it."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.data.tables import TableClient

from recording_pipeline.ids import encode_id
from tests.functions.stack import FUNCTION_KEY, ApiServer, OidcIssuer, acs_recording
from tests.functions.stack import state_changed_event as event_about
from tests.support.emulator import RunningEmulator

KEYED = {"x-functions-key": FUNCTION_KEY}
JSON = {"content-type": "application/json"}
#: 600 characters, each of which encode_id writes as three: 1,800, far past a Table key's 512.
WORST_CASE_ID = "+" * 600


@pytest.fixture
def http(callback_api: ApiServer) -> Any:
    with httpx.Client(base_url=callback_api.base_url, timeout=30) as client:
        yield client


def raw_json(value: Any) -> bytes:
    """JSON text as a client may send it: lone surrogates as ``\\uXXXX`` escapes."""
    return json.dumps(value).encode("ascii")


def deliver(http: httpx.Client, issuer: OidcIssuer, content: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {issuer.token()}", **JSON}
    return http.post("/api/callbacks", content=content, headers=headers)


def assert_400(response: httpx.Response, field: str, rule: str = "") -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert rule in response.json()["detail"]
    assert "Traceback" not in response.text


def assert_still_readable(http: httpx.Client, recording_id: str) -> None:
    listed = http.get("/api/recordings", headers=KEYED, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    one = http.get(f"/api/recordings/{quote(recording_id, safe='')}", headers=KEYED)
    assert one.status_code in (200, 404), one.text


@pytest.mark.parametrize(
    ("place", "field"),
    [
        (("data", "serverCallId"), "[0].data.serverCallId"),
        (("id",), "[0].id"),
        (("data", "recordingId"), "[0].data.recordingId"),
    ],
    ids=["serverCallId", "event-id", "recordingId"],
)
def test_a_lone_surrogate_in_a_callback_is_400_and_the_list_keeps_answering(
    http: httpx.Client,
    issuer: OidcIssuer,
    module_emulator: RunningEmulator,
    place: tuple[str, ...],
    field: str,
) -> None:
    recording_id = acs_recording(module_emulator)
    event = event_about(recording_id, "active")
    target = event
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = "x\ud800"

    assert_400(deliver(http, issuer, raw_json([event])), field, "valid Unicode text")
    assert_still_readable(http, recording_id)


def test_a_deeply_nested_callback_body_is_400_on_body(
    http: httpx.Client, issuer: OidcIssuer
) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    assert_400(deliver(http, issuer, nested), "body", "nests too deeply")


def test_a_callback_recording_id_too_long_for_a_table_key_is_400_not_503(
    http: httpx.Client, issuer: OidcIssuer
) -> None:
    response = deliver(http, issuer, raw_json([event_about(WORST_CASE_ID, "active")]))
    assert_400(response, "[0].data.recordingId", "too long to be a Table key")


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/pause"), ("DELETE", "")], ids=str
)
def test_a_path_id_too_long_for_a_table_key_is_400(
    http: httpx.Client, method: str, suffix: str
) -> None:
    path = f"/api/recordings/{quote(WORST_CASE_ID, safe='')}{suffix}"
    assert_400(http.request(method, path, headers=KEYED), "recordingId", "Table key")


def test_an_unparsable_callback_url_is_400_naming_it(
    http: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:a"])
    body = {"serverCallId": call["serverCallId"], "recordingStateCallbackUrl": "https://[::1"}
    response = http.post("/api/recordings", json=body, headers=KEYED)
    assert_400(response, "recordingStateCallbackUrl", "cannot be parsed")


@pytest.mark.parametrize(
    "decoded",
    ['{"pk":"\\ud800","rk":"recording"}', '{"pk":"a b","rk":null}', "[" * 1000 + "]" * 1000],
    ids=["lone-surrogate", "not-a-service-value", "deep"],
)
def test_a_continuation_token_this_api_did_not_issue_is_400(
    http: httpx.Client, decoded: str
) -> None:
    token = base64.urlsafe_b64encode(decoded.encode()).decode().rstrip("=")
    response = http.get("/api/recordings", headers=KEYED, params={"continuationToken": token})
    assert_400(response, "continuationToken", "not a token this API issued")


@pytest.mark.parametrize(
    ("content", "field", "rule"),
    [
        (raw_json({"serverCallId": "call\ud800"}), "serverCallId", "valid Unicode text"),
        (b"[" * 30_000 + b"]" * 30_000, "body", "nests too deeply"),
        (b'{"serverCallId": "c", "pauseOnStart": ' + b"1" * 5000 + b"}", "body", "cannot be"),
        (b'{"serverCallId": "\xff"}', "body", "is not UTF-8"),
        (
            raw_json(
                {
                    "serverCallId": "c",
                    "content": "audio",
                    "channel": "unmixed",
                    "audioChannelParticipantOrdering": ["8:acs:" + "+" * 170],
                }
            ),
            "audioChannelParticipantOrdering[0]",
            "Table key",
        ),
    ],
    ids=["surrogate", "deep", "huge-integer", "not-utf8", "participant-too-long-for-a-key"],
)
def test_a_hostile_start_body_is_400_naming_the_field(
    http: httpx.Client, content: bytes, field: str, rule: str
) -> None:
    response = http.post("/api/recordings", content=content, headers={**KEYED, **JSON})
    assert_400(response, field, rule)


def test_an_idempotency_key_too_long_for_a_table_key_is_400_not_503(
    http: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:a"])
    response = http.post(
        "/api/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio"},
        headers={**KEYED, "Idempotency-Key": "!" * 255},
    )
    assert_400(response, "Idempotency-Key", "Table key")


def test_a_row_already_holding_bad_text_is_listed_and_read_not_a_500(
    http: httpx.Client, callback_registry: TableClient
) -> None:
    """Written before the edge checked text (the Tables SDK stores a lone surrogate in a
    property): shown with U+FFFD in its place, never a 500 for it or for the whole list."""
    recording_id = f"bad-row-{uuid.uuid4().hex}"
    history = [{"state": "active", "at": "2026-12-01T10:00:00.000000Z", "source": "callback"}]
    history[0]["eventId"] = "e\ud800"
    callback_registry.upsert_entity(
        {
            "PartitionKey": encode_id(recording_id),
            "RowKey": "recording",
            "RecordingId": recording_id,
            "ServerCallId": "call\ud800",
            "State": "active",
            "StateHistoryJson": json.dumps(history),
        }
    )

    listed = http.get("/api/recordings", headers=KEYED, params={"serverCallId": "call\ufffd"})
    assert listed.status_code == 200, listed.text
    everything = http.get("/api/recordings", headers=KEYED, params={"limit": 100})
    assert everything.status_code == 200, everything.text
    (item,) = [i for i in everything.json()["items"] if i["recordingId"] == recording_id]
    assert item["serverCallId"] == "call\ufffd"
    one = http.get(f"/api/recordings/{recording_id}", headers=KEYED)
    assert one.status_code == 200, one.text
    assert one.json()["registry"]["serverCallId"] == "call\ufffd"
    assert one.json()["registry"]["stateHistory"][0]["eventId"] == "e\ufffd"
