"""docs/events/: one valid JSON Schema per event type, which every built event meets and which
refuses what an event must not be."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recording_pipeline.events_out.cloud_events import (
    EventName,
    RecordingFacts,
    archived_event,
    status_event,
)
from tests.support.event_schemas import SCHEMA_DIR, schema_problems
from tests.unit.test_cloud_events import SOURCE, blob_url, long_blob_url, manifest


def built_events() -> dict[EventName, dict[str, Any]]:
    facts = RecordingFacts("rec+1/=", "server-1", "call-1", "audio", "unmixed", "wav")
    events = {EventName.ARCHIVED: archived_event(manifest(), source=SOURCE, blob_url=blob_url)}
    for name in EventName:
        if name is not EventName.ARCHIVED:
            events[name] = status_event(
                name,
                facts,
                source=SOURCE,
                occurred_at="2026-05-06T07:00:00.000000Z",
                reason="HttpResponseError (HTTP 503): busy",
                stopped_at="2026-05-06T06:30:00.000000Z",
            )
    return events


def test_every_event_type_has_one_schema_and_every_schema_is_valid() -> None:
    files = {path.name for path in SCHEMA_DIR.glob("*.schema.json")}
    assert files == {f"{name.value}.schema.json" for name in EventName} | {"common.schema.json"}
    for path in SCHEMA_DIR.glob("*.schema.json"):
        assert jsonschema_rs.meta.is_valid(json.loads(path.read_text())), path.name


@pytest.mark.parametrize("name", list(EventName))
def test_every_built_event_meets_its_schema(name: EventName) -> None:
    assert schema_problems(built_events()[name]) == []


def test_a_truncated_archive_event_meets_the_schema() -> None:
    event = archived_event(manifest(1000), source=SOURCE, blob_url=long_blob_url)
    assert event["data"]["filesTruncated"] is True
    assert schema_problems(event) == []


def _without(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    broken = copy.deepcopy(event)
    target = broken
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return broken


@pytest.mark.parametrize(
    ("name", "path"),
    [
        (EventName.ARCHIVED, ("id",)),
        (EventName.ARCHIVED, ("data", "files")),
        (EventName.ARCHIVED, ("data", "participants")),
        (EventName.ARCHIVED, ("data", "manifest", "url")),
        (EventName.LOST, ("data", "reason")),
        (EventName.FAILED, ("data", "retryable")),
        (EventName.OVERDUE, ("data", "stoppedAt")),
        (EventName.ERASED, ("data", "erasedAt")),
        (EventName.ERASED, ("data", "format")),
    ],
)
def test_a_missing_field_is_refused(name: EventName, path: tuple[str, ...]) -> None:
    problems = schema_problems(_without(built_events()[name], path))
    assert problems and any(path[-1] in problem for problem in problems)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda e: e.update(type="AcsCallRecording.RecordingLost"), "reason"),
        (lambda e: e.update(specversion="0.3"), "1.0"),
        (lambda e: e.update(time="yesterday"), "date-time"),
        (lambda e: e.update(id="not-a-uuid"), "uuid"),
        (lambda e: e.update(subject="/recordings/a/b"), "subject"),
        (lambda e: e.update(extra="x"), "extra"),
        (lambda e: e["data"].update(unexpected=1), "unexpected"),
        (
            lambda e: e["data"]["files"][0].update(url=e["data"]["files"][0]["url"] + "?sig=x"),
            "url",
        ),
        (lambda e: e["data"]["files"][0].update(md5="abc"), "md5"),
        (lambda e: e["data"]["format"].update(format="ogg"), "ogg"),
        (lambda e: e["data"].update(schemaVersion=2), "schemaVersion"),
    ],
)
def test_a_wrong_value_is_refused(change: Any, says: str) -> None:
    event = built_events()[EventName.ARCHIVED]
    change(event)
    problems = schema_problems(event)
    assert problems and says in " ".join(problems), problems


@given(st.sampled_from(list(EventName)), st.sampled_from(["data", "source", "type", "time"]))
def test_any_event_without_a_required_attribute_is_refused(name: EventName, attribute: str) -> None:
    assert schema_problems(_without(built_events()[name], (attribute,)))


def test_an_unknown_type_has_no_schema() -> None:
    assert schema_problems({"type": "AcsCallRecording.RecordingPaused"}) == [
        "no schema for AcsCallRecording.RecordingPaused in docs/events/"
    ]
