"""An Event Grid custom topic (CloudEvents 1.0 input schema), as a publisher meets it.

``EventGridTopicProvider.publish_events`` is ``POST /api/events?api-version=2018-01-01`` (the
path of a custom topic's ``endpoint``). It checks what Event Grid checks, in the order a
request meets the checks: the ``aeg-sas-key`` (401; done by the app's auth step), the
``api-version`` (400), the size of the request and of each event (413), the content type
(``application/cloudevents-batch+json`` for a JSON array, or ``application/cloudevents+json``
for one event; 400), then each event's CloudEvents attributes (400). A request is accepted or
refused whole; accepted events are kept, in order, with the time they arrived, for tests and
the demo (``GET /emulator/topic-events``). Events are not delivered anywhere (a subscription
is Event Grid's business; the pipeline only publishes).

Sources: "Publish events to Azure Event Grid custom topics using access keys" (the path, the
header, 200/400/401/404/413 and the error body ``{"error": {"code", "message", "details"}}``),
"Azure Event Grid quotas and limits" (1 MB per event and per request, 5,000 events per
request), the CloudEvents 1.0.2 specification and its JSON format (required attributes,
attribute names, ``data`` vs ``data_base64``). Event Grid documents no machine-readable code in
``details``; the emulator's codes (``InputJsonInvalid``, ``MissingRequiredAttribute``, ...) are
its own.

LIMITATIONS: no Entra ID (bearer tokens are refused with 401: the local stack signs with the
key), no SAS tokens (``aeg-sas-token``), no event-type or subject filtering, no delivery.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulator.constants import (
    TOPIC_API_VERSIONS,
    TOPIC_MAX_EVENT_BYTES,
    TOPIC_MAX_EVENTS_PER_REQUEST,
    TOPIC_MAX_REQUEST_BYTES,
)
from emulator.errors import TopicBadRequest, TopicPayloadTooLarge, TopicUnauthorized

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
SINGLE_CONTENT_TYPE = "application/cloudevents+json"
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
#: Optional context attributes of CloudEvents 1.0 and the JSON type each must have.
OPTIONAL_STRING_ATTRIBUTES = ("subject", "time", "datacontenttype", "dataschema")
#: CloudEvents: attribute names are lower-case letters and digits (extensions included).
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
#: RFC 3339 date-time, as CloudEvents' ``time`` requires.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class EventGridTopicProvider:
    """One custom topic: its access key, the events it accepted, and ``reset()``.

    :param key: the topic's access key (``aeg-sas-key``); the emulator's ``--topic-key``.
    :param now: the emulator's clock (seconds since the epoch).
    """

    def __init__(self, key: str, now: Callable[[], float]) -> None:
        self.key = key
        self._now = now
        self.received: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.received.clear()

    def check_key(self, headers: dict[str, str]) -> None:
        """The ``aeg-sas-key`` header must be the topic's key (compared in constant time)."""
        given = headers.get("aeg-sas-key")
        if given is None:
            reason = (
                "a bearer token (this topic accepts only its access key)"
                if headers.get("authorization", "").lower().startswith("bearer ")
                else "no aeg-sas-key header"
            )
            raise TopicUnauthorized(f"The request is not authorized: {reason}.")
        if not hmac.compare_digest(given.encode(), self.key.encode()):
            raise TopicUnauthorized("The request is not authorized: the aeg-sas-key is not valid.")

    def publish_events(
        self, body: bytes, *, content_type: str | None, api_version: str | None
    ) -> int:
        """Accept the request's events, or refuse it whole; the number of events accepted."""
        if api_version not in TOPIC_API_VERSIONS:
            raise TopicBadRequest(
                "UnsupportedApiVersion",
                f"The api-version query parameter must be one of {', '.join(TOPIC_API_VERSIONS)}"
                f" (got {api_version!r}).",
            )
        if len(body) > TOPIC_MAX_REQUEST_BYTES:
            raise TopicPayloadTooLarge(
                f"The request is {len(body)} bytes; at most {TOPIC_MAX_REQUEST_BYTES} are accepted."
            )
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type not in (BATCH_CONTENT_TYPE, SINGLE_CONTENT_TYPE):
            raise TopicBadRequest(
                "UnsupportedContentType",
                f"The Content-Type header must be {BATCH_CONTENT_TYPE} (or {SINGLE_CONTENT_TYPE}"
                f" for one event) on a topic with the CloudEventSchemaV1_0 input schema (got "
                f"{content_type!r}).",
            )
        events = _parse(body, batch=media_type == BATCH_CONTENT_TYPE)
        for index, event in enumerate(events):
            size = len(json.dumps(event).encode())
            if size > TOPIC_MAX_EVENT_BYTES:
                raise TopicPayloadTooLarge(
                    f"Event [{index}] is {size} bytes; an event may have at most "
                    f"{TOPIC_MAX_EVENT_BYTES}."
                )
            _check_event(event, index)
        arrived = datetime.fromtimestamp(self._now(), UTC).isoformat().replace("+00:00", "Z")
        self.received.extend({"event": event, "receivedAt": arrived} for event in events)
        return len(events)


def _parse(body: bytes, *, batch: bool) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TopicBadRequest("InputJsonInvalid", f"The request body is not JSON: {exc}.") from exc
    if not batch:
        parsed = [parsed]
    if not isinstance(parsed, list):
        raise TopicBadRequest(
            "InputJsonInvalid",
            f"The body of a {BATCH_CONTENT_TYPE} request must be a JSON array of events.",
        )
    if not parsed:
        raise TopicBadRequest("InputJsonInvalid", "The request holds no event.")
    if len(parsed) > TOPIC_MAX_EVENTS_PER_REQUEST:
        raise TopicBadRequest(
            "TooManyEvents",
            f"The request holds {len(parsed)} events; at most {TOPIC_MAX_EVENTS_PER_REQUEST}.",
        )
    for index, event in enumerate(parsed):
        if not isinstance(event, dict):
            raise TopicBadRequest("InputJsonInvalid", f"Event [{index}] is not a JSON object.")
    return parsed


def _check_event(event: dict[str, Any], index: int) -> None:
    """The CloudEvents 1.0 rules every event must meet; the message names the attribute."""
    where = f"event [{index}]"
    for name in REQUIRED_ATTRIBUTES:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise TopicBadRequest(
                "MissingRequiredAttribute",
                f"Required attribute '{name}' of {where} is missing or not a non-empty string.",
            )
    if event["specversion"] != "1.0":
        raise TopicBadRequest(
            "UnsupportedSpecVersion",
            f"Attribute 'specversion' of {where} must be '1.0' (got {event['specversion']!r}).",
        )
    for name in OPTIONAL_STRING_ATTRIBUTES:
        if name in event and (not isinstance(event[name], str) or not event[name]):
            raise TopicBadRequest(
                "InvalidAttribute", f"Attribute '{name}' of {where} must be a non-empty string."
            )
    if "time" in event and not _RFC3339.match(event["time"]):
        raise TopicBadRequest(
            "InvalidAttribute",
            f"Attribute 'time' of {where} must be an RFC 3339 timestamp (got {event['time']!r}).",
        )
    if "data" in event and "data_base64" in event:
        raise TopicBadRequest(
            "InvalidAttribute", f"{where} has both 'data' and 'data_base64'; at most one."
        )
    for name in event:
        if name not in ("data", "data_base64") and not _ATTRIBUTE_NAME.match(name):
            raise TopicBadRequest(
                "InvalidAttribute",
                f"Attribute name {name!r} of {where} must be 1-20 lower-case letters or digits.",
            )
