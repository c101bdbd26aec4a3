"""The parsers take any input: they answer a valid value or their own rejection, nothing else.

Pure functions, so many examples in little time: the event parser (queue messages), the JSON
reader every route and the archiver share, and the callback parser. What passes must also be
safe to store: valid text, ids that fit a Table key and, for events, blob names that fit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import astuple
from datetime import timedelta
from typing import Any

from hypothesis import given, settings

from recording_pipeline.api.callbacks import parse_delivery
from recording_pipeline.api.problems import ProblemError
from recording_pipeline.archive.events import (
    InvalidEventError,
    RecordingEvent,
    UnsupportedEventTypeError,
    parse_event_message,
)
from recording_pipeline.archive.layout import longest_file_name, recording_prefix
from recording_pipeline.clock import iso, parse_timestamp, utc_now
from recording_pipeline.input_rules import (
    UnreadableJsonError,
    blob_name_problem,
    invalid_text_path,
    key_id_problem,
    load_json,
)
from tests.functions.fuzz.strategies import FUZZ, bodies, queue_bodies
from tests.functions.stack import state_changed_event

RESOURCE_ID = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Communication/x/acs"
HOST = "https://emu.asm.skype.com/v1/objects"
VALID_EVENT: dict[str, Any] = {
    "id": str(uuid.UUID(int=1)),
    "topic": RESOURCE_ID,
    "subject": "/recording/call/c-1/serverCallId/s-1/recordingId/eyJQ+/Rk==",
    "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
    "eventTime": "2026-03-04T10:00:00Z",
    "data": {
        "recordingStorageInfo": {
            "recordingChunks": [
                {
                    "documentId": f"0-emu-d{index}",
                    "index": index,
                    "endReason": "SessionEnded",
                    "contentLocation": f"{HOST}/0-emu-d{index}/content/audio",
                    "metadataLocation": f"{HOST}/0-emu-d{index}/content/acsmetadata",
                    "deleteLocation": f"{HOST}/0-emu-d{index}",
                }
                for index in range(2)
            ]
        },
        "recordingStartTime": "2026-03-04T10:00:00Z",
        "recordingDurationMs": 2000,
        "recordingFormatType": "wav",
    },
}
MANY = settings(FUZZ, max_examples=FUZZ.max_examples * 5)


def assert_safe_to_store(event: RecordingEvent) -> None:
    assert all(invalid_text_path(value) is None for value in astuple(event) if value is not None)
    assert key_id_problem(event.recording_id) is None
    prefix = recording_prefix(event.call_id, event.recording_id, event.recording_start_time)
    assert blob_name_problem(prefix + longest_file_name(len(event.chunks))) is None


def test_the_valid_event_of_these_tests_is_valid() -> None:
    assert_safe_to_store(parse_event_message(json.dumps(VALID_EVENT), resource_id=RESOURCE_ID))


@MANY
@given(queue_bodies(VALID_EVENT))
def test_the_event_parser_answers_an_event_or_a_rejection(body: str | bytes) -> None:
    try:
        event = parse_event_message(body, resource_id=RESOURCE_ID)
    except InvalidEventError as rejected:
        assert rejected.reason and "Traceback" not in rejected.reason
    except UnsupportedEventTypeError:
        pass
    else:
        assert_safe_to_store(event)


@MANY
@given(bodies(VALID_EVENT))
def test_the_json_reader_raises_nothing_but_its_own_error(body: bytes) -> None:
    try:
        load_json(body)
    except UnreadableJsonError as error:
        assert error.reason


VALID_DELIVERY = [
    state_changed_event("eyJQ+/Rk==", "active", event_id=str(uuid.UUID(int=2))),
    {"id": "e-2", "type": "Microsoft.Communication.CallConnected", "data": {}},
]


@MANY
@given(bodies(VALID_DELIVERY))
def test_the_callback_parser_answers_events_or_a_400_naming_a_field(body: bytes) -> None:
    try:
        delivery = load_json(body)
    except UnreadableJsonError:
        return  # the route answers 400 on body before the parser sees it
    now = utc_now()
    try:
        events, ignored = parse_delivery(delivery, now=now)
    except ProblemError as problem:
        assert problem.status == 400
        assert problem.field
        return
    assert ignored >= 0
    for event in events:
        assert invalid_text_path(astuple(event)) is None
        assert key_id_problem(event.recording_id) is None
        moment = parse_timestamp(event.at)
        assert moment is not None and iso(moment) == event.at
        assert now - timedelta(hours=24) <= moment <= now + timedelta(minutes=5)
