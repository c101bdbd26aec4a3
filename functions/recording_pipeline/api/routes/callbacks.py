"""Call Automation callbacks: ACS's JWT checked, the events queued, acknowledged once written."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from recording_pipeline.api import problems
from recording_pipeline.api.callbacks import (
    CALLBACKS_PATH,
    CallbackAuthError,
    CallbackEvent,
    CallbackTokenVerifier,
    bearer_token,
    parse_delivery,
    record_events,
)
from recording_pipeline.api.dependencies import Services
from recording_pipeline.api.known_recordings import KnownRecordings
from recording_pipeline.api.oidc import OidcUnavailableError
from recording_pipeline.api.problems import problem_responses
from recording_pipeline.api.schemas import CallbackAck
from recording_pipeline.api.timing import measure
from recording_pipeline.input_rules import UnreadableJsonError, load_json
from recording_pipeline.registry.table import RegistryUnavailableError
from recording_pipeline.registry.writer import written_within

LOGGER = logging.getLogger(__name__)

#: A callback is acknowledged once written; past this, 503 and ACS delivers it again.
CALLBACK_WRITE_TIMEOUT_SECONDS = 10.0

router = APIRouter(tags=["callbacks"])


@router.post(CALLBACKS_PATH, response_model=CallbackAck, responses=problem_responses(400, 401, 503))
async def callbacks(
    request: Request,
    services: Services,
    authorization: Annotated[
        str | None, Header(description="`Bearer <JWT>` signed by ACS.")
    ] = None,
) -> dict[str, int]:
    """Call Automation callbacks (CloudEvents array), authenticated by ACS's JWT.

    Only events about a recording this API started, or that ACS knows, and whose start did not
    name its own callback URL, are recorded, and a failure only when ACS no longer has the
    recording live; the others are logged and counted as ignored.
    """
    await run_in_threadpool(_verify_callback_token, services.verifier, authorization)
    events, ignored = parse_delivery(await _json_body(request))
    admitted = await _confirmed_endings(
        services.known, await _about_known_recordings(services.known, events)
    )
    written = record_events(services.writes, admitted)
    try:
        with measure("registry"):
            await written_within(written, CALLBACK_WRITE_TIMEOUT_SECONDS)
    except RegistryUnavailableError as error:
        LOGGER.warning("callback not acknowledged: %s", error)
        raise problems.registry_unavailable(retry_after_seconds=5) from error
    return {
        "received": len(events) + ignored,
        "recorded": len(written),
        "ignored": ignored + len(events) - len(admitted),
    }


async def _about_known_recordings(
    known: KnownRecordings, events: list[CallbackEvent]
) -> list[CallbackEvent]:
    answers: dict[str, bool] = {}
    for event in events:
        if event.recording_id not in answers:
            answers[event.recording_id] = await known.contains(event.recording_id)
            if not answers[event.recording_id]:
                LOGGER.warning(
                    "callback %s ignored: recording %r was not started by this API and ACS does "
                    "not know it",
                    event.event_type,
                    event.recording_id,
                )
    for recording_id, known_here in answers.items():
        if known_here and await known.sends_callbacks_elsewhere(recording_id):
            answers[recording_id] = False
            LOGGER.warning(
                "callbacks ignored: recording %r was started with its own callback URL, so ACS "
                "does not send its callbacks here",
                recording_id,
            )
    return [event for event in events if answers[event.recording_id]]


async def _confirmed_endings(
    known: KnownRecordings, events: list[CallbackEvent]
) -> list[CallbackEvent]:
    """The events without the failures ACS contradicts: a ``failed`` recording is final, so a
    failure is applied only when ACS no longer has the recording live (one fresh lookup per
    recording; the delivery names at most ``MAX_RECORDINGS_PER_DELIVERY``)."""
    live: dict[str, str | None] = {}
    for event in events:
        if event.state == "failed" and event.recording_id not in live:
            live[event.recording_id] = await known.live_at_acs(event.recording_id)
            if live[event.recording_id] is not None:
                LOGGER.warning(
                    "callback %s ignored: ACS reports recording %r %s",
                    event.event_type,
                    event.recording_id,
                    live[event.recording_id],
                )
    return [
        event for event in events if event.state != "failed" or live[event.recording_id] is None
    ]


def _verify_callback_token(verifier: CallbackTokenVerifier, authorization: str | None) -> None:
    try:
        with measure("token"):
            verifier.verify(bearer_token(authorization))
    except CallbackAuthError as error:
        LOGGER.warning("callback refused: %s", error)
        raise problems.unauthorized(f"Callback token refused: {error}") from error
    except OidcUnavailableError as error:
        LOGGER.warning("callback not verifiable now: %s", error)
        raise problems.oidc_unavailable("Callback") from error


async def _json_body(request: Request) -> Any:
    """The delivery, read only now (after the token check) through the request guard's cap."""
    try:
        return load_json(await request.body())
    except UnreadableJsonError as error:
        raise problems.invalid_field(
            "body", f"must be a CloudEvents array: the body {error.reason}"
        ) from None
