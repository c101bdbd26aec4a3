"""Seeded, per-operation fault injection, so a client's retry and resume paths can be tested.

A rule names an operation (or ``*``), a kind and how often it fires. Draws come from one
``random.Random(seed)``, so the same seed and the same request sequence give the same faults.

Kinds: ``error`` (a 5xx), ``throttle`` (429 with Retry-After), ``drop`` (connection closed after
``afterBytes`` bytes of the body), ``slow`` (body sent at ``bytesPerSecond``), and for
``events``: ``duplicate`` (delivered twice), ``delay`` (``delaySeconds`` later), ``drop`` (never
delivered, as when Event Grid drops an event it cannot deliver and has no dead-letter
destination) and ``deadletter`` (written to the dead-letter container the way Event Grid writes
an event it gave up on). A rule may name a ``recordingId``: it then fires only for requests
about that recording (its REST operations, the download and deletion of its chunks) or for its
event, so one recording can be made to fail while the others go through.

``publish_events`` is the Event Grid custom topic's publish request (``POST /api/events``), a
service of its own: a rule must name it (``*`` means every ACS operation, not the topic), and
its HTTP kinds make a publisher's request fail as an outage of the topic would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from emulator.errors import InvalidField

OPERATIONS = (
    "start_recording",
    "get_recording_properties",
    "pause_recording",
    "resume_recording",
    "stop_recording",
    "download_recording",
    "delete_recording",
    "events",
    "publish_events",
)
#: Operations ``*`` does not cover: another service than ACS.
NOT_IN_WILDCARD = frozenset({"publish_events"})
HTTP_KINDS = ("error", "throttle", "drop", "slow")
EVENT_KINDS = ("duplicate", "delay", "drop", "deadletter")


@dataclass
class FaultRule:
    operation: str
    kind: str
    probability: float = 1.0
    times: int | None = None
    status: int = 503
    retry_after: int = 1
    after_bytes: int = 0
    bytes_per_second: int = 1_000_000
    delay_seconds: float = 1.0
    #: The rule fires only for this recording's requests and event (None: any).
    recording_id: str | None = None
    fired: int = 0

    def describe(self) -> dict:
        return {
            "operation": self.operation,
            "kind": self.kind,
            "probability": self.probability,
            "times": self.times,
            "status": self.status,
            "retryAfter": self.retry_after,
            "afterBytes": self.after_bytes,
            "bytesPerSecond": self.bytes_per_second,
            "delaySeconds": self.delay_seconds,
            "recordingId": self.recording_id,
            "fired": self.fired,
        }


def parse_rule(item: object, field: str) -> FaultRule:
    if not isinstance(item, dict):
        raise InvalidField(field, "must be an object")
    operation = item.get("operation", "*")
    if operation != "*" and operation not in OPERATIONS:
        raise InvalidField(
            f"{field}.operation", f"must be '*' or one of {', '.join(OPERATIONS)}", operation
        )
    kind = item.get("kind")
    allowed = EVENT_KINDS if operation == "events" else HTTP_KINDS
    if kind not in allowed:
        raise InvalidField(
            f"{field}.kind", f"must be one of {', '.join(allowed)} for '{operation}'", kind
        )
    rule = FaultRule(
        operation=operation,
        kind=str(kind),
        probability=_number(item, "probability", field, 1.0, 0.0, 1.0),
        times=None if item.get("times") is None else int(_number(item, "times", field, 0, 1, 1e9)),
        status=int(_number(item, "status", field, 503, 500, 599)),
        retry_after=int(_number(item, "retryAfter", field, 1, 0, 3600)),
        after_bytes=int(_number(item, "afterBytes", field, 0, 0, 1e12)),
        bytes_per_second=int(_number(item, "bytesPerSecond", field, 1_000_000, 1, 1e12)),
        delay_seconds=_number(item, "delaySeconds", field, 1.0, 0.0, 3600.0),
        recording_id=_recording_id(item, field),
    )
    return rule


def _recording_id(item: dict, field: str) -> str | None:
    value = item.get("recordingId")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidField(f"{field}.recordingId", "must be a non-empty string", value)
    return value


def _number(item: dict, key: str, field: str, default: float, low: float, high: float) -> float:
    value = item.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidField(
            f"{field}.{key}", f"must be a number between {low:g} and {high:g}", value
        )
    return float(value)


class FaultInjector:
    def __init__(self, seed: int = 0, rules: list[FaultRule] | None = None) -> None:
        self.configure(seed, rules or [])

    def configure(self, seed: int, rules: list[FaultRule]) -> None:
        self.seed = seed
        self.rules = rules
        self._random = random.Random(seed)  # noqa: S311 - reproducible test faults, not secrets

    def configure_from(self, body: object) -> None:
        if not isinstance(body, dict):
            raise InvalidField("body", "must be a JSON object")
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InvalidField("seed", "must be an integer", seed)
        rules = body.get("rules", [])
        if not isinstance(rules, list):
            raise InvalidField("rules", "must be a list", rules)
        self.configure(seed, [parse_rule(item, f"rules[{i}]") for i, item in enumerate(rules)])

    def describe(self) -> dict:
        return {"seed": self.seed, "rules": [rule.describe() for rule in self.rules]}

    def draw(
        self, operation: str, kinds: tuple[str, ...], *, recording_id: str | None = None
    ) -> FaultRule | None:
        """The first matching rule that fires for this request, if any; counts the firing.

        A rule that names a recording matches only a draw for that recording (and uses no
        draw from the seeded sequence for any other, so naming one recording does not change
        which of the others a probabilistic rule hits).
        """
        for rule in self.rules:
            wildcard = rule.operation == "*" and operation not in NOT_IN_WILDCARD
            if not (wildcard or rule.operation == operation) or rule.kind not in kinds:
                continue
            if rule.recording_id is not None and rule.recording_id != recording_id:
                continue
            if rule.times is not None and rule.fired >= rule.times:
                continue
            if self._random.random() < rule.probability:
                rule.fired += 1
                return rule
        return None
