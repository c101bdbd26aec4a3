"""Call Automation callbacks: who may send them (the JWT check) and what they change.

ACS cannot present a function key, so ``/api/callbacks`` is anonymous at the host and each
delivery is authenticated by the bearer JWT ACS signs: the signature against the keys the OIDC
metadata publishes, the issuer the metadata names, the audience equal to the ACS resource's
immutable id (so a token minted for another ACS resource is refused) and the expiry. The
metadata and keys are cached (``oidc.OidcKeySource``, shared with the API's Entra ID tokens); an
unknown ``kid`` triggers one refresh, so a key rotation needs no restart.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import jwt

from recording_pipeline.api.oidc import (
    ACS_CALLBACK_KEY_POLICY,
    OidcKeySource,
    UnknownSigningKeyError,
)
from recording_pipeline.api.problems import FieldError, invalid_request
from recording_pipeline.clock import iso, parse_timestamp, utc_now
from recording_pipeline.input_rules import id_problem, invalid_text_path, key_id_problem
from recording_pipeline.registry import schema
from recording_pipeline.registry.states import StateChange, state_change
from recording_pipeline.registry.writer import DeferredRegistryWrites

LOGGER = logging.getLogger(__name__)

#: Where ACS posts callbacks; the default ``recordingStateCallbackUri`` of a start.
CALLBACKS_PATH = "/api/callbacks"
RECORDING_STATE_CHANGED = "Microsoft.Communication.RecordingStateChanged"
START_RECORDING_FAILED = "Microsoft.Communication.StartRecordingFailed"
ALGORITHMS = ("RS256",)
#: Clock skew tolerated on ``exp``/``nbf``/``iat`` between ACS and this app.
LEEWAY_SECONDS = 30
#: An event's time may be this far in the past: ACS keeps a recording for a day, and a callback
#: older than that can only be a replay.
CALLBACK_TIME_PAST = timedelta(hours=24)
#: ... and this far in the future (clock skew between ACS and this app).
CALLBACK_TIME_FUTURE = timedelta(minutes=5)
#: ACS's CloudEvent ids are GUIDs; the registry keeps up to 200 history entries with their event
#: ids in one 32 K-character property, which longer ids would overflow.
MAX_EVENT_ID_CHARS = 64
#: ACS posts a recording's callbacks one event per delivery (its documentation publishes no batch
#: size); a delivery of more than this many events is not ACS's, and each event may cost a
#: registry read and a write.
MAX_EVENTS_PER_DELIVERY = 50
#: Each recording a delivery names may cost an ACS lookup (``known_recordings``, and a failure's
#: confirmation); ACS's deliveries name one.
MAX_RECORDINGS_PER_DELIVERY = 5


class CallbackAuthError(Exception):
    """The delivery's token is missing or invalid; the message says which check failed."""


class CallbackTokenVerifier:
    """Verify ACS callback tokens against the OIDC metadata at ``metadata_url``.

    :param metadata_url: ACS's ``acsopenidconfiguration`` in Azure, the emulator's locally.
    :param audience: the ACS resource's immutable id.
    :keyword key_refresh_cooldown: minimum seconds between key-set refreshes for unknown kids.
    """

    def __init__(
        self,
        metadata_url: str,
        audience: str,
        *,
        timeout: float = 10.0,
        key_refresh_cooldown: float = ACS_CALLBACK_KEY_POLICY.unknown_kid_cooldown_seconds,
    ) -> None:
        if not metadata_url or not audience:
            raise ValueError("metadata_url and audience are required")
        self._audience = audience
        policy = replace(ACS_CALLBACK_KEY_POLICY, unknown_kid_cooldown_seconds=key_refresh_cooldown)
        self._keys = OidcKeySource(metadata_url, policy, timeout=timeout)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the token's claims.

        :raises CallbackAuthError: when any check fails.
        :raises OidcUnavailableError: when the metadata or the keys cannot be fetched.
        """
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as error:
            raise CallbackAuthError(f"token signing key not accepted: {error}") from error
        try:
            signing_key = self._keys.signing_key(str(kid))
        except UnknownSigningKeyError as error:
            raise CallbackAuthError(
                f"token signing key not accepted: no published key has kid {str(kid)[:64]!r}"
            ) from error
        try:
            return jwt.decode(
                token,
                signing_key.key,
                algorithms=list(ALGORITHMS),
                audience=self._audience,
                issuer=self._keys.issuer(),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as error:
            raise CallbackAuthError(_reason(error)) from error


def _reason(error: jwt.InvalidTokenError) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "token has expired"
    if isinstance(error, jwt.InvalidAudienceError):
        return "token audience is not this ACS resource"
    if isinstance(error, jwt.InvalidIssuerError):
        return "token issuer is not the one the OIDC metadata names"
    if isinstance(error, jwt.InvalidSignatureError):
        return "token signature does not verify"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"token lacks the {error.claim!r} claim"
    return f"token is invalid ({type(error).__name__})"


def bearer_token(authorization: str | None) -> str:
    """:raises CallbackAuthError: when the header is not ``Bearer <token>``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CallbackAuthError("an 'Authorization: Bearer <token>' header is required")
    return token.strip()


@dataclass(frozen=True)
class CallbackEvent:
    """One CloudEvent of a delivery that this API records."""

    event_id: str
    event_type: str
    recording_id: str
    state: str
    at: str
    server_call_id: str | None
    call_connection_id: str | None
    failure: str | None
    #: The call's id (``correlationId``); the archiver binds recording files to it.
    correlation_id: str | None = None


def parse_delivery(body: Any, *, now: datetime | None = None) -> tuple[list[CallbackEvent], int]:
    """Recorded events and the number of ignored (unknown-type) events.

    Every event is checked before anything is written, so a malformed delivery changes nothing:
    at most :data:`MAX_EVENTS_PER_DELIVERY` events about at most
    :data:`MAX_RECORDINGS_PER_DELIVERY` recordings (which bounds the ACS lookups a delivery
    causes), all text must be valid Unicode, ids must follow the id rules (the recording id must
    fit a Table key), and an event's time must be ISO 8601 within :data:`CALLBACK_TIME_PAST` before
    and :data:`CALLBACK_TIME_FUTURE` after ``now``.

    :raises ProblemError: 400 naming the first malformed field.
    """
    if not isinstance(body, list):
        raise invalid_request([FieldError(field="body", detail="must be a CloudEvents array")])
    if len(body) > MAX_EVENTS_PER_DELIVERY:
        raise invalid_request(
            [
                FieldError(
                    field="body",
                    detail=f"must hold at most {MAX_EVENTS_PER_DELIVERY} events "
                    f"(this one holds {len(body)})",
                )
            ]
        )
    bad_text = invalid_text_path(body)
    if bad_text is not None:
        raise invalid_request(
            [FieldError(field=bad_text or "body", detail="must be valid Unicode text")]
        )
    moment = now or utc_now()
    events: list[CallbackEvent] = []
    ignored = 0
    errors: list[FieldError] = []
    for index, raw in enumerate(body):
        where = f"[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            errors.append(FieldError(field=f"{where}.type", detail="must be a string"))
            continue
        if raw["type"] not in {RECORDING_STATE_CHANGED, START_RECORDING_FAILED}:
            LOGGER.info("callback event of type %r ignored", raw["type"][:100])
            ignored += 1
            continue
        event, event_errors = _parse_event(where, raw, moment)
        errors += event_errors
        if event is not None:
            events.append(event)
    if errors:
        raise invalid_request(errors)
    named = len({event.recording_id for event in events})
    if named > MAX_RECORDINGS_PER_DELIVERY:
        raise invalid_request(
            [
                FieldError(
                    field="body",
                    detail=f"must be about at most {MAX_RECORDINGS_PER_DELIVERY} recordings "
                    f"(this one names {named})",
                )
            ]
        )
    return events, ignored


def _parse_event(
    where: str, raw: dict[str, Any], now: datetime
) -> tuple[CallbackEvent | None, list[FieldError]]:
    data = raw.get("data")
    event_id = raw.get("id")
    errors = []
    if not isinstance(event_id, str):
        errors.append(FieldError(field=f"{where}.id", detail="must be a non-empty string"))
    elif problem := id_problem(event_id, max_chars=MAX_EVENT_ID_CHARS):
        errors.append(FieldError(field=f"{where}.id", detail=problem))
    if not isinstance(data, dict):
        return None, [*errors, FieldError(field=f"{where}.data", detail="must be an object")]
    recording_id = data.get("recordingId")
    if not isinstance(recording_id, str):
        errors.append(
            FieldError(field=f"{where}.data.recordingId", detail="must be a non-empty string")
        )
    elif problem := key_id_problem(recording_id):
        errors.append(FieldError(field=f"{where}.data.recordingId", detail=problem))
    failed = raw["type"] == START_RECORDING_FAILED
    state = "failed" if failed else data.get("state")
    if not isinstance(state, str) or state not in {"active", "inactive", "failed"}:
        errors.append(
            FieldError(field=f"{where}.data.state", detail="must be 'active' or 'inactive'")
        )
    call_ids = {}
    for name in ("serverCallId", "callConnectionId", "correlationId"):
        value, problem = _optional_id(data.get(name))
        if problem is not None:
            errors.append(FieldError(field=f"{where}.data.{name}", detail=problem))
        call_ids[name] = value
    at, time_error = _event_time(where, raw, data, now)
    if time_error is not None:
        errors.append(time_error)
    if errors:
        return None, errors
    return (
        CallbackEvent(
            event_id=str(event_id),
            event_type=raw["type"],
            recording_id=str(recording_id),
            state=str(state),
            at=at,
            server_call_id=call_ids["serverCallId"],
            call_connection_id=call_ids["callConnectionId"],
            correlation_id=call_ids["correlationId"],
            failure=_failure(data) if failed else None,
        ),
        [],
    )


def _event_time(
    where: str, raw: dict[str, Any], data: dict[str, Any], now: datetime
) -> tuple[str, FieldError | None]:
    """The event's time (CloudEvents ``time``, else the data's ``startDateTime``, else now), in
    the registry's one format, or the error that names the field."""
    candidates = (
        (f"{where}.time", raw.get("time")),
        (f"{where}.data.startDateTime", data.get("startDateTime")),
    )
    for field, candidate in candidates:
        if candidate is None:
            continue
        moment = parse_timestamp(candidate) if isinstance(candidate, str) else None
        if moment is None:
            return "", FieldError(
                field=field, detail="must be an ISO 8601 date-time with a time zone"
            )
        if not now - CALLBACK_TIME_PAST <= moment <= now + CALLBACK_TIME_FUTURE:
            return "", FieldError(
                field=field,
                detail=f"must be within {_hours(CALLBACK_TIME_PAST)} before and "
                f"{_minutes(CALLBACK_TIME_FUTURE)} after this app's clock ({iso(now)})",
            )
        return iso(moment), None
    return iso(now), None


def _hours(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 3600)} hours"


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} minutes"


def _optional_id(value: Any) -> tuple[str | None, str | None]:
    """``(id or None, problem)`` of an optional call id."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, str):
        return None, "must be a string"
    return value, id_problem(value)


def _failure(data: dict[str, Any]) -> str:
    info = data.get("resultInformation")
    if not isinstance(info, dict):
        return "StartRecordingFailed without resultInformation"
    return f"{info.get('code')}/{info.get('subCode')}: {info.get('message')}"


def record_events(
    writes: DeferredRegistryWrites, events: list[CallbackEvent]
) -> list[Future[None]]:
    """Queue each event for the registry; a redelivered event changes nothing.

    :returns: one future per event, done when it is written; acknowledge the delivery only
        then (a failed one fails with :class:`RegistryUnavailableError`, so ACS retries).
    """
    written = []
    for event in events:
        change = StateChange(event.state, event.at, "callback", event.event_id)
        call_ids = {
            schema.SERVER_CALL_ID: event.server_call_id or "",
            schema.CALL_CONNECTION_ID: event.call_connection_id or "",
            schema.CORRELATION_ID: event.correlation_id or "",
        }
        written.append(
            writes.submit(
                event.recording_id,
                state_change(
                    event.recording_id,
                    change,
                    failure=event.failure,
                    create_if_missing=True,
                    call_ids=call_ids,
                ),
            )
        )
        LOGGER.info("callback %s queued: recording state %s", event.event_type, event.state)
    return written
