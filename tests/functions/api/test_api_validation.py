"""One case per validation rule, over HTTP: each is a 400 problem naming the field and the rule,
and none of them reaches ACS or writes the registry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient

from local_runtime.processes import Azurite
from tests.support.emulator import RunningEmulator

PROBLEM_FIELDS = {"type", "title", "status", "detail", "field", "errors"}
SIX = [f"8:acs:p{i}" for i in range(6)]


def affinity(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"participant": participant, "channel": channel} for participant, channel in pairs]


# (case id, body changes (None = remove the key), expected field, words of the rule in `detail`)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-call-locator", {"serverCallId": None}, "serverCallId", "exactly one of"),
    ("both-call-locators", {"callConnectionId": "c-1"}, "callConnectionId", "not both"),
    ("blank-server-call-id", {"serverCallId": "  "}, "serverCallId", "must not be empty"),
    ("server-call-id-not-string", {"serverCallId": 42}, "serverCallId", "valid string"),
    ("unknown-content", {"content": "video"}, "content", "'audio' or 'audioVideo'"),
    ("unknown-channel", {"channel": "stereo"}, "channel", "'mixed' or 'unmixed'"),
    ("unknown-format", {"format": "ogg"}, "format", "'wav', 'mp3' or 'mp4'"),
    (
        "audio-video-unmixed",
        {"content": "audioVideo", "channel": "unmixed", "format": "mp4"},
        "channel",
        "audioVideo is recorded mixed only",
    ),
    (
        "audio-video-not-mp4",
        {"content": "audioVideo", "format": "wav"},
        "format",
        "audioVideo is recorded as mp4 only",
    ),
    ("mixed-audio-mp4", {"format": "mp4"}, "format", "mixed audio is recorded as wav or mp3"),
    (
        "unmixed-audio-mp3",
        {"channel": "unmixed", "format": "mp3"},
        "format",
        "unmixed audio is recorded as wav only",
    ),
    (
        "ordering-for-mixed",
        {"audioChannelParticipantOrdering": ["8:acs:a"]},
        "audioChannelParticipantOrdering",
        "only for unmixed",
    ),
    (
        "affinity-for-mixed",
        {"channelAffinity": affinity(("8:acs:a", 0))},
        "channelAffinity",
        "only for unmixed",
    ),
    (
        "ordering-more-than-5",
        {"channel": "unmixed", "audioChannelParticipantOrdering": SIX},
        "audioChannelParticipantOrdering",
        "at most 5 unmixed channels",
    ),
    (
        "ordering-duplicate",
        {"channel": "unmixed", "audioChannelParticipantOrdering": ["8:acs:a", "8:acs:a"]},
        "audioChannelParticipantOrdering",
        "twice",
    ),
    (
        "ordering-blank-participant",
        {"channel": "unmixed", "audioChannelParticipantOrdering": [""]},
        "audioChannelParticipantOrdering[0]",
        "must not be empty",
    ),
    (
        "affinity-more-than-5",
        {"channel": "unmixed", "channelAffinity": affinity(*((p, 0) for p in SIX))},
        "channelAffinity",
        "at most 5 unmixed channels",
    ),
    (
        "affinity-channel-above-4",
        {"channel": "unmixed", "channelAffinity": affinity(("8:acs:a", 5))},
        "channelAffinity[0].channel",
        "channel must be 0-4",
    ),
    (
        "affinity-channel-negative",
        {"channel": "unmixed", "channelAffinity": affinity(("8:acs:a", -1))},
        "channelAffinity[0].channel",
        "channel must be 0-4",
    ),
    (
        "affinity-channel-twice",
        {"channel": "unmixed", "channelAffinity": affinity(("8:acs:a", 1), ("8:acs:b", 1))},
        "channelAffinity",
        "each channel may be assigned only once",
    ),
    (
        "affinity-participant-twice",
        {"channel": "unmixed", "channelAffinity": affinity(("8:acs:a", 1), ("8:acs:a", 2))},
        "channelAffinity",
        "twice",
    ),
    (
        "affinity-channel-not-integer",
        {"channel": "unmixed", "channelAffinity": [{"participant": "8:acs:a", "channel": "1"}]},
        "channelAffinity[0].channel",
        "valid integer",
    ),
    ("pause-on-start-not-boolean", {"pauseOnStart": "true"}, "pauseOnStart", "valid boolean"),
    ("unknown-field", {"recordingFormat": "wav"}, "recordingFormat", "not a known field"),
    (
        "callback-url-plain-http",
        {"recordingStateCallbackUrl": "http://example.com/cb"},
        "recordingStateCallbackUrl",
        "absolute https URL",
    ),
    (
        "callback-url-relative",
        {"recordingStateCallbackUrl": "/api/callbacks"},
        "recordingStateCallbackUrl",
        "absolute https URL",
    ),
    (
        "callback-url-with-credentials",
        {"recordingStateCallbackUrl": "https://user:pw@example.com/cb"},
        "recordingStateCallbackUrl",
        "without credentials",
    ),
]


@pytest.fixture(scope="module")
def call(module_emulator: RunningEmulator) -> dict[str, Any]:
    return module_emulator.simulation.create_call(["8:acs:a", "8:acs:b"])


@pytest.fixture(scope="module")
def registry(azurite: Azurite, registry_table: str) -> TableClient:
    return TableClient.from_connection_string(azurite.connection_string, registry_table)


def entity_count(registry: TableClient) -> int:
    return len(list(registry.list_entities()))


def acs_recordings(emulator: RunningEmulator, server_call_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.simulation.objects()["recordings"]
        if r["serverCallId"] == server_call_id
    ]


def assert_problem(response: httpx.Response, field: str, rule: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) <= PROBLEM_FIELDS
    assert problem["type"] == "urn:acs-call-recording:problem:invalid-request"
    assert problem["status"] == 400
    assert problem["title"]
    assert problem["field"] == field
    assert rule in problem["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("changes", "field", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_violation_is_400_naming_field_and_rule_and_changes_nothing(
    client: httpx.Client,
    module_emulator: RunningEmulator,
    registry: TableClient,
    call: dict[str, Any],
    changes: dict[str, Any],
    field: str,
    rule: str,
) -> None:
    body: dict[str, Any] = {"serverCallId": call["serverCallId"], "content": "audio"}
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    entities_before = entity_count(registry)

    assert_problem(client.post("/api/recordings", json=body), field, rule)

    assert acs_recordings(module_emulator, call["serverCallId"]) == []
    assert entity_count(registry) == entities_before


@pytest.mark.parametrize(
    ("content", "rule"),
    [(b"{not json", "must be a JSON object"), (b"[]", "valid dictionary")],
    ids=["not-json", "array"],
)
def test_unreadable_body_is_400_on_body(client: httpx.Client, content: bytes, rule: str) -> None:
    response = client.post(
        "/api/recordings", content=content, headers={"content-type": "application/json"}
    )
    assert_problem(response, "body", rule)


@pytest.mark.parametrize(
    "key", ["has space", "x" * 256, "tab\there", "ünïcode"], ids=["space", "long", "tab", "utf8"]
)
def test_bad_idempotency_key_is_400_and_starts_nothing(
    client: httpx.Client, module_emulator: RunningEmulator, call: dict[str, Any], key: str
) -> None:
    response = client.post(
        "/api/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio"},
        headers={"Idempotency-Key": key.encode("utf-8")},
    )
    assert_problem(response, "Idempotency-Key", "printable ASCII")
    assert acs_recordings(module_emulator, call["serverCallId"]) == []


def test_several_broken_rules_are_all_listed(client: httpx.Client) -> None:
    response = client.post(
        "/api/recordings",
        json={"content": "audioVideo", "channel": "unmixed", "format": "wav"},
    )
    problem = response.json()
    assert response.status_code == 400
    assert [(e["field"]) for e in problem["errors"]] == ["serverCallId", "channel", "format"]


def test_valid_request_for_the_same_call_is_accepted(
    client: httpx.Client, module_emulator: RunningEmulator, call: dict[str, Any]
) -> None:
    """The control case: the call used above is recordable, so the 400s came from the rules."""
    response = client.post(
        "/api/recordings",
        json={
            "serverCallId": call["serverCallId"],
            "content": "audio",
            "channel": "unmixed",
            "channelAffinity": affinity(("8:acs:a", 0), ("8:acs:b", 4)),
        },
    )
    assert response.status_code == 201, response.text
    assert [r["recordingId"] for r in acs_recordings(module_emulator, call["serverCallId"])] == [
        response.json()["recordingId"]
    ]
