"""``POST /api/callbacks`` over HTTP with tokens from a local OIDC issuer (own RSA keys).

The API is configured with the issuer's metadata URL exactly as it is with ACS's in Azure, so
these tests cover the real verification path: metadata -> JWKS -> signature, issuer, audience,
expiry. The emulator's own signed callbacks are covered in ``test_api_recordings.py``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from cryptography.hazmat.primitives.asymmetric import rsa

from local_runtime.processes import Azurite
from recording_pipeline.api.routes.callbacks import CALLBACK_WRITE_TIMEOUT_SECONDS
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.ids import encode_id
from tests.functions.api.test_api_recordings import wait_until
from tests.functions.stack import (
    FUNCTION_KEY,
    ApiServer,
    OidcIssuer,
    acs_recording,
    stack_environment,
    start_api,
    state_changed_event,
    unique_table_name,
)
from tests.support.emulator import RunningEmulator


@pytest.fixture
def http(callback_api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=callback_api.base_url, timeout=30) as client:
        yield client


def deliver(http: httpx.Client, events: Any, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return http.post("/api/callbacks", json=events, headers=headers)


def registry_view(http: httpx.Client, recording_id: str) -> dict[str, Any] | None:
    response = http.get(
        f"/api/recordings/{quote(recording_id, safe='')}",
        headers={"x-functions-key": FUNCTION_KEY},
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()["registry"]


def new_recording_id() -> str:
    return f"cb+{uuid.uuid4().hex}/=="


def test_valid_token_records_state_changed_in_the_registry(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    recording_id = acs_recording(module_emulator)
    event = state_changed_event(recording_id, "active", server_call_id="call-1")

    response = deliver(http, [event], issuer.token())

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "recorded": 1, "ignored": 0}
    registry = registry_view(http, recording_id)
    assert registry is not None
    assert registry["state"] == "active"
    assert registry["serverCallId"] == "call-1"
    assert registry["stateHistory"] == [
        {"state": "active", "at": event["time"], "source": "callback", "eventId": event["id"]}
    ]


def test_the_calls_id_of_a_verified_callback_is_kept_for_the_archiver(
    http: httpx.Client,
    issuer: OidcIssuer,
    module_emulator: RunningEmulator,
    callback_registry: TableClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The archiver binds recording files to the call a signed callback named (``CorrelationId``);
    a later callback naming another call (a replayed token, or the real one after a forger won
    the race) does not replace it but leaves a conflict, logged loudly, that stops the archiver
    binding either."""
    recording_id = acs_recording(module_emulator)
    first = state_changed_event(recording_id, "active", correlation_id="call-of-the-recording")
    other = state_changed_event(recording_id, "inactive", correlation_id="another-call")
    same = state_changed_event(recording_id, "inactive", correlation_id="call-of-the-recording")

    assert deliver(http, [first], issuer.token()).status_code == 200
    assert deliver(http, [same], issuer.token()).status_code == 200
    entity = callback_registry.get_entity(encode_id(recording_id), "recording")
    assert "CorrelationConflict" not in entity
    with caplog.at_level(logging.ERROR, logger="recording_pipeline.registry.states"):
        assert deliver(http, [other], issuer.token()).status_code == 200

    entity = callback_registry.get_entity(encode_id(recording_id), "recording")
    assert entity["CorrelationId"] == "call-of-the-recording"
    conflict = json.loads(entity["CorrelationConflict"])
    assert conflict["correlationId"] == "another-call"
    assert conflict["eventId"] == other["id"]
    assert any(
        "CALL_ID_CONFLICT" in record.getMessage() and recording_id in record.getMessage()
        for record in caplog.records
    )


def start_through_the_api(
    http: httpx.Client, module_emulator: RunningEmulator, registry: TableClient, **options: Any
) -> tuple[str, str]:
    """A recording started through the API: its id and its call's server call id."""
    call = module_emulator.simulation.create_call(["8:acs:a"])
    response = http.post(
        "/api/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio", **options},
        headers={"x-functions-key": FUNCTION_KEY},
    )
    assert response.status_code in (200, 201, 202), response.text
    recording_id = response.json()["recordingId"]
    assert wait_until(lambda: stored(registry, recording_id)) is not None  # the start has landed
    return recording_id, call["serverCallId"]


def stored(registry: TableClient, recording_id: str) -> dict[str, Any] | None:
    try:
        return dict(registry.get_entity(encode_id(recording_id), "recording"))
    except ResourceNotFoundError:
        return None


def test_a_callback_naming_another_server_call_writes_no_call_id(
    http: httpx.Client,
    issuer: OidcIssuer,
    module_emulator: RunningEmulator,
    callback_registry: TableClient,
) -> None:
    """The start wrote the recording's server call: a callback naming another one (a replayed
    token carrying another call's ids) writes none of its ids; one naming the recording's own
    server call (spelled padded, in the other alphabet) writes the call id."""
    recording_id, server_call_id = start_through_the_api(http, module_emulator, callback_registry)
    forged = state_changed_event(
        recording_id, "active", server_call_id="b3RoZXItY2FsbA", correlation_id="other-call"
    )
    assert deliver(http, [forged], issuer.token()).status_code == 200
    entity = callback_registry.get_entity(encode_id(recording_id), "recording")
    assert not entity.get("CorrelationId")
    assert entity["ServerCallId"] == server_call_id
    assert entity.get("CallConnectionId") != "connection"

    spelled = server_call_id.replace("-", "+").replace("_", "/")
    spelled += "=" * (-len(spelled) % 4)
    real = state_changed_event(
        recording_id, "inactive", server_call_id=spelled, correlation_id="the-call"
    )
    assert deliver(http, [real], issuer.token()).status_code == 200
    entity = callback_registry.get_entity(encode_id(recording_id), "recording")
    assert entity["CorrelationId"] == "the-call"
    assert "CorrelationConflict" not in entity


def test_callbacks_of_a_recording_started_with_its_own_callback_url_are_ignored(
    http: httpx.Client,
    issuer: OidcIssuer,
    module_emulator: RunningEmulator,
    callback_registry: TableClient,
) -> None:
    """ACS sends that recording's callbacks to the URL its start named, never here: one arriving
    here carries a replayed token, so it is counted as ignored and writes nothing."""
    recording_id, server_call_id = start_through_the_api(
        http,
        module_emulator,
        callback_registry,
        recordingStateCallbackUrl="https://backend.example/acs",
    )
    before = callback_registry.get_entity(encode_id(recording_id), "recording")
    forged = state_changed_event(
        recording_id, "inactive", server_call_id=server_call_id, correlation_id="other-call"
    )

    response = deliver(http, [forged], issuer.token())

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "recorded": 0, "ignored": 1}
    after = callback_registry.get_entity(encode_id(recording_id), "recording")
    assert not after.get("CorrelationId")
    assert after["StateHistoryJson"] == before["StateHistoryJson"]


def test_a_bad_call_id_is_refused_naming_the_field(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    recording_id = acs_recording(module_emulator)
    event = state_changed_event(recording_id, "active", correlation_id="call\x00id")

    response = deliver(http, [event], issuer.token())

    assert response.status_code == 400, response.text
    assert "data.correlationId" in response.text
    assert registry_view(http, recording_id) is None


def test_redelivered_event_changes_nothing(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    recording_id = acs_recording(module_emulator)
    event = state_changed_event(recording_id, "inactive")
    assert deliver(http, [event], issuer.token()).status_code == 200
    first = registry_view(http, recording_id)
    assert deliver(http, [event], issuer.token()).status_code == 200
    assert registry_view(http, recording_id) == first


def start_recording_failed(recording_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "Microsoft.Communication.StartRecordingFailed",
        "specversion": "1.0",
        "source": "calling/callConnections/c-1",
        "time": iso(utc_now()),
        "data": {
            "recordingId": recording_id,
            "callConnectionId": "c-1",
            "resultInformation": {"code": 500, "subCode": 8583, "message": "Recording failed"},
        },
    }


def test_start_recording_failed_marks_the_recording_failed_once_acs_confirms_it(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:callback-test"])
    with module_emulator.sdk_client() as client:
        recording_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
    assert deliver(http, [state_changed_event(recording_id, "active")], issuer.token())
    module_emulator.simulation.hangup(call["serverCallId"])  # ACS no longer has it live

    event = start_recording_failed(recording_id)
    assert deliver(http, [event], issuer.token()).json()["recorded"] == 1
    registry = registry_view(http, recording_id)
    assert registry is not None
    assert registry["state"] == "failed"
    assert registry["failure"] == "500/8583: Recording failed"


def test_a_failure_for_a_recording_acs_reports_live_changes_nothing(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    """A replayed token with StartRecordingFailed for a recording that is recording: ignored."""
    recording_id = acs_recording(module_emulator)
    assert deliver(http, [state_changed_event(recording_id, "active")], issuer.token())
    before = registry_view(http, recording_id)

    response = deliver(http, [start_recording_failed(recording_id)], issuer.token())

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "recorded": 0, "ignored": 1}
    after = registry_view(http, recording_id)
    assert after == before
    assert after is not None and after["state"] == "active" and after["failure"] is None


def test_unknown_event_types_are_accepted_and_logged(
    http: httpx.Client, issuer: OidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="recording_pipeline.api.callbacks")
    other = {"id": "e-1", "type": "Microsoft.Communication.CallConnected", "data": {}}
    response = deliver(http, [other], issuer.token())
    assert response.status_code == 200
    assert response.json() == {"received": 1, "recorded": 0, "ignored": 1}
    assert "Microsoft.Communication.CallConnected" in caplog.text


@pytest.mark.parametrize(
    ("token_of", "reason"),
    [
        (lambda issuer: issuer.token(issued_at=time.time() - 3600), "expired"),
        (lambda issuer: issuer.token(audience="another-acs-resource"), "audience"),
        (lambda issuer: issuer.token(issuer="https://evil.example"), "issuer"),
        (
            lambda issuer: issuer.token(
                key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "signature",
        ),
        (
            lambda issuer: issuer.token(
                key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                kid="unpublished-kid",
            ),
            "signing key",
        ),
        (
            lambda issuer: jwt.encode(
                {"iss": issuer.issuer, "aud": issuer.audience, "exp": int(time.time()) + 300},
                "a-shared-secret-guessed-by-an-attacker-0123",
                algorithm="HS256",
                headers={"kid": issuer.keys[-1][0]},
            ),
            "token",
        ),
        (lambda issuer: "not-a-jwt", "token"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "forged", "unknown-kid", "hs256", "garbage"],
)
def test_invalid_token_is_401_and_records_nothing(
    http: httpx.Client, issuer: OidcIssuer, token_of: Any, reason: str
) -> None:
    recording_id = new_recording_id()
    response = deliver(http, [state_changed_event(recording_id, "active")], token_of(issuer))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert registry_view(http, recording_id) is None


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwdw==", "Bearer"])
def test_missing_bearer_token_is_401(http: httpx.Client, authorization: str | None) -> None:
    recording_id = new_recording_id()
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.post(
        "/api/callbacks", json=[state_changed_event(recording_id, "active")], headers=headers
    )
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert registry_view(http, recording_id) is None


def test_rotated_signing_key_is_fetched_on_first_use(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    assert deliver(http, [], issuer.token()).status_code == 200  # keys are cached now
    fetched = issuer.jwks_requests
    issuer.rotate()
    recording_id = acs_recording(module_emulator)
    response = deliver(http, [state_changed_event(recording_id, "active")], issuer.token())
    assert response.status_code == 200, response.text
    assert issuer.jwks_requests == fetched + 1
    assert registry_view(http, recording_id) is not None


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ({"type": "Microsoft.Communication.RecordingStateChanged"}, "body"),
        ([{"type": "Microsoft.Communication.RecordingStateChanged", "id": "x"}], "[0].data"),
        ([{"id": "x", "data": {}}], "[0].type"),
    ],
    ids=["not-an-array", "no-data", "no-type"],
)
def test_malformed_delivery_is_400(
    http: httpx.Client, issuer: OidcIssuer, events: Any, field: str
) -> None:
    response = deliver(http, events, issuer.token())
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_one_malformed_event_rejects_the_whole_delivery(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    good_id = acs_recording(module_emulator)
    bad = state_changed_event(new_recording_id(), "paused")  # not an ACS state
    response = deliver(http, [state_changed_event(good_id, "active"), bad], issuer.token())
    assert response.status_code == 400
    assert response.json()["field"] == "[1].data.state"
    assert registry_view(http, good_id) is None


def test_callback_for_an_api_started_recording_merges_into_its_entity(
    http: httpx.Client, issuer: OidcIssuer, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:a"])
    started = http.post(
        "/api/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio"},
        headers={"x-functions-key": FUNCTION_KEY},
    ).json()
    recording_id = started["recordingId"]
    early = state_changed_event(recording_id, "active", server_call_id=call["serverCallId"])
    assert deliver(http, [early], issuer.token()).status_code == 200
    registry = registry_view(http, recording_id)
    assert registry is not None
    assert registry["options"]["content"] == "audio"
    assert {entry["source"] for entry in registry["stateHistory"]} >= {"api", "callback"}


def test_a_callback_the_registry_cannot_take_is_503_so_acs_retries(
    module_emulator: RunningEmulator, issuer: OidcIssuer, tmp_path: Path
) -> None:
    private = Azurite(location=tmp_path / "azurite").start()
    environ = stack_environment(
        module_emulator, private, table=unique_table_name(), oidc_metadata_url=issuer.metadata_url
    )
    server = start_api(environ)
    try:
        private.stop()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            began = time.monotonic()
            response = deliver(
                client, [state_changed_event(new_recording_id(), "active")], issuer.token()
            )
            elapsed = time.monotonic() - began
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("registry-unavailable")
        assert response.headers["retry-after"] == "5"
        assert elapsed < CALLBACK_WRITE_TIMEOUT_SECONDS  # the first failed attempt answers
    finally:
        server.stop()
        private.stop()


def registry_rows(table: TableClient) -> list[tuple[str, str]]:
    return sorted((e["PartitionKey"], e["RowKey"]) for e in table.list_entities())


def test_a_replayed_token_cannot_create_a_recording_this_api_never_started(
    http: httpx.Client, issuer: OidcIssuer, callback_registry: TableClient
) -> None:
    """A token captured at the callback URL, replayed with events about a recording neither the
    registry nor ACS knows: acknowledged (ACS need not retry), logged, and nothing written."""
    token = issuer.token()
    recording_id = new_recording_id()
    rows = registry_rows(callback_registry)
    for event in (
        state_changed_event(recording_id, "active"),
        start_recording_failed(recording_id),
    ):
        response = deliver(http, [event], token)
        assert response.status_code == 200, response.text
        assert response.json() == {"received": 1, "recorded": 0, "ignored": 1}
    assert registry_view(http, recording_id) is None
    assert registry_rows(callback_registry) == rows


@pytest.mark.parametrize(
    ("time_of", "rule"),
    [
        (lambda: "garbage-time", "ISO 8601"),
        (lambda: 1767261600, "ISO 8601"),
        (lambda: "2026-01-01T10:00:00", "ISO 8601"),  # no zone
        (lambda: iso(utc_now() - timedelta(hours=25)), "within 24 hours before"),
        (lambda: iso(utc_now() + timedelta(minutes=10)), "5 minutes after"),
    ],
    ids=["garbage", "number", "no-zone", "a-day-old", "future"],
)
def test_an_event_time_must_be_iso_8601_within_a_sane_window(
    http: httpx.Client,
    issuer: OidcIssuer,
    module_emulator: RunningEmulator,
    time_of: Any,
    rule: str,
) -> None:
    recording_id = acs_recording(module_emulator)
    event = state_changed_event(recording_id, "active")
    event["time"] = time_of()
    response = deliver(http, [event], issuer.token())
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "[0].time"
    assert rule in response.json()["detail"]
    assert registry_view(http, recording_id) is None


@pytest.mark.parametrize(
    ("state", "archive_status"),
    [("stopped", None), ("failed", None), ("active", "archived")],
    ids=["stopped", "failed", "archived"],
)
def test_a_recording_that_has_ended_never_gets_a_new_failure(
    http: httpx.Client,
    issuer: OidcIssuer,
    callback_registry: TableClient,
    state: str,
    archive_status: str | None,
) -> None:
    recording_id = new_recording_id()
    history = [{"state": state, "at": iso(utc_now()), "source": "api"}]
    callback_registry.upsert_entity(
        {
            "PartitionKey": encode_id(recording_id),
            "RowKey": "recording",
            "RecordingId": recording_id,
            "State": state,
            "StateHistoryJson": json.dumps(history),
            **({"ArchiveStatus": archive_status} if archive_status else {}),
        }
    )
    before = registry_view(http, recording_id)
    assert before is not None

    response = deliver(http, [start_recording_failed(recording_id)], issuer.token())

    assert response.status_code == 200, response.text
    after = registry_view(http, recording_id)
    assert after is not None
    assert after["stateHistory"] == [{**entry, "eventId": None} for entry in history]
    assert after["failure"] is None
    assert after["state"] == before["state"]


def test_a_delivery_of_more_events_than_acs_sends_is_400_and_asks_nothing(
    http: httpx.Client, issuer: OidcIssuer, callback_registry: TableClient
) -> None:
    """A replayed token with a flood of events: refused before any lookup or write."""
    rows = registry_rows(callback_registry)
    flood = [state_changed_event(new_recording_id(), "active") for _ in range(51)]

    started = time.monotonic()
    response = deliver(http, flood, issuer.token())

    assert response.status_code == 400, response.text
    assert response.json()["field"] == "body"
    assert response.json()["detail"] == "must hold at most 50 events (this one holds 51)"
    assert time.monotonic() - started < 2.0  # 51 ACS lookups would take longer
    assert registry_rows(callback_registry) == rows


def test_a_delivery_about_more_recordings_than_the_lookup_bound_is_400(
    http: httpx.Client, issuer: OidcIssuer, callback_registry: TableClient
) -> None:
    rows = registry_rows(callback_registry)
    events = [state_changed_event(new_recording_id(), "active") for _ in range(6)]

    response = deliver(http, events, issuer.token())

    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "must be about at most 5 recordings (this one names 6)"
    assert registry_rows(callback_registry) == rows


def test_a_callback_flood_never_erases_what_the_api_did(
    http: httpx.Client, issuer: OidcIssuer, callback_registry: TableClient
) -> None:
    recording_id = new_recording_id()
    api_history = [
        {"state": "active", "at": iso(utc_now() - timedelta(minutes=3)), "source": "api"},
        {"state": "inactive", "at": iso(utc_now() - timedelta(minutes=2)), "source": "api"},
    ]
    callback_registry.upsert_entity(
        {
            "PartitionKey": encode_id(recording_id),
            "RowKey": "recording",
            "RecordingId": recording_id,
            "State": "inactive",
            "StateHistoryJson": json.dumps(api_history),
        }
    )
    for _ in range(5):  # 250 events in deliveries of the largest size allowed
        events = [state_changed_event(recording_id, "active") for _ in range(50)]
        assert deliver(http, events, issuer.token()).status_code == 200

    after = registry_view(http, recording_id)

    assert after is not None
    assert len(after["stateHistory"]) == 200
    assert [e for e in after["stateHistory"] if e["source"] == "api"] == [
        {**entry, "eventId": None} for entry in api_history
    ]
