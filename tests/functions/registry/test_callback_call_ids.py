"""Which call ids a verified callback may write (``registry.states.callback_call_ids``): pure,
on registry rows as the API's start and earlier callbacks leave them."""

from __future__ import annotations

import json
from typing import Any

from recording_pipeline.registry import schema
from recording_pipeline.registry.states import StateChange, callback_call_ids

CHANGE = StateChange("inactive", "2026-12-03T10:00:00Z", "callback", "event-2")
OPTIONS = json.dumps({"content": "audio"})


def named(server_call_id: str, correlation_id: str) -> dict[str, str]:
    return {schema.SERVER_CALL_ID: server_call_id, schema.CORRELATION_ID: correlation_id}


def row(**properties: Any) -> dict[str, Any]:
    return {schema.OPTIONS_JSON: OPTIONS, **properties}


def test_a_start_by_server_call_ignores_a_callback_naming_another_server_call() -> None:
    entity = row(**{schema.SERVER_CALL_ID: "c2VydmVyLWE", schema.CALL_CONNECTION_ID: ""})

    assert callback_call_ids("rec", entity, named("b3RoZXI", "call-b"), CHANGE) == {}


def test_a_server_call_a_callback_wrote_is_a_conflict_when_another_callback_differs() -> None:
    """After a start by call connection the row's server call came from the first callback; a
    forger who won that race must not keep the recording: the real callback, naming another
    server call, leaves a conflict that stops the archiver binding either."""
    entity = row(
        **{
            schema.SERVER_CALL_ID: "Zm9yZ2Vk",
            schema.CALL_CONNECTION_ID: "connection-1",
            schema.CORRELATION_ID: "forged-call",
        }
    )

    written = callback_call_ids("rec", entity, named("cmVhbA", "real-call"), CHANGE)

    conflict = json.loads(written[schema.CORRELATION_CONFLICT])
    assert conflict == {"serverCallId": "cmVhbA", "eventId": "event-2", "at": CHANGE.at}
    assert schema.SERVER_CALL_ID not in written and schema.CORRELATION_ID not in written


def test_a_row_no_start_wrote_is_a_conflict_too() -> None:
    entity = {schema.SERVER_CALL_ID: "Zm9yZ2Vk", schema.CORRELATION_ID: "forged-call"}

    written = callback_call_ids("rec", entity, named("cmVhbA", "real-call"), CHANGE)

    assert schema.CORRELATION_CONFLICT in written


def test_the_first_conflict_is_kept() -> None:
    entity = row(
        **{
            schema.SERVER_CALL_ID: "Zm9yZ2Vk",
            schema.CALL_CONNECTION_ID: "connection-1",
            schema.CORRELATION_CONFLICT: json.dumps({"correlationId": "x"}),
        }
    )

    assert callback_call_ids("rec", entity, named("cmVhbA", "real-call"), CHANGE) == {}
