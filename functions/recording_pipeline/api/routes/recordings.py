"""The recordings resource: start and list (the collection), read, pause, resume and stop (an item).

Two routers, because their place in the app differs: the item routes capture the recording id
with a ``:path`` converter (ids may contain ``/``), so they must be mounted after every more
specific route under ``/api/recordings/{recordingId}/`` (the archive's), or they would take its
path for part of an id (see ``app.ROUTERS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from recording_pipeline.api.callbacks import CALLBACKS_PATH
from recording_pipeline.api.control import PAUSE, RESUME, STOP, Transition
from recording_pipeline.api.dependencies import KEYED, KEYED_RESPONSES, RecordingIdPath, Services
from recording_pipeline.api.problems import problem_responses
from recording_pipeline.api.rules import (
    validate_idempotency_key,
    validate_query_id,
    validate_recording_id,
    validate_start_request,
)
from recording_pipeline.api.schemas import (
    ArchiveStatus,
    RecordingList,
    RecordingState,
    RecordingView,
    StartRecordingRequest,
    StartRecordingResponse,
    StateChangeResponse,
)

collection = APIRouter(dependencies=KEYED, responses=KEYED_RESPONSES, tags=["recordings"])
item = APIRouter(dependencies=KEYED, responses=KEYED_RESPONSES, tags=["recordings"])


@collection.post(
    "/api/recordings",
    status_code=201,
    response_model=StartRecordingResponse,
    responses=problem_responses(400, 401, 404, 409, 422, 502, 503),
)
async def start_recording(
    body: StartRecordingRequest,
    request: Request,
    response: Response,
    services: Services,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retries with the same key start the recording only once.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Start recording a call; answers the recording id and its registry location."""
    options = validate_start_request(body)
    key = None if idempotency_key is None else validate_idempotency_key(idempotency_key)
    callback_url = (services.public_base_url or str(request.base_url).rstrip("/")) + (
        CALLBACKS_PATH
    )
    outcome = await services.control.start(options, callback_url=callback_url, idempotency_key=key)
    response.headers["Location"] = outcome.body["location"]
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return outcome.body


@collection.get(
    "/api/recordings",
    response_model=RecordingList,
    responses=problem_responses(400, 401, 503),
)
async def list_recordings(
    services: Services,
    server_call_id: Annotated[
        str | None,
        Query(alias="serverCallId", min_length=1, max_length=1024, description="Only this call."),
    ] = None,
    state: Annotated[
        RecordingState | None, Query(description="Only recordings in this registry state.")
    ] = None,
    archive_status: Annotated[
        ArchiveStatus | None,
        Query(alias="archiveStatus", description="Only recordings with this archive status."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")] = 20,
    continuation_token: Annotated[
        str | None,
        Query(
            alias="continuationToken",
            max_length=4096,
            description="The `continuationToken` of the previous page.",
        ),
    ] = None,
) -> dict[str, Any]:
    """List recordings from the registry (never ACS), in the registry's key order.

    Table Storage orders only by key, and the key is the recording id, so the order is
    stable across pages but not chronological; sort a page (or all pages) by `createdAt`.
    """
    return await services.control.list_recordings(
        limit=limit,
        continuation_token=continuation_token,
        server_call_id=validate_query_id("serverCallId", server_call_id),
        state=state,
        archive_status=archive_status,
    )


@item.get(
    "/api/recordings/{recordingId:path}",
    response_model=RecordingView,
    responses=problem_responses(400, 401, 404, 502, 503),
)
async def get_recording(recordingId: RecordingIdPath, services: Services) -> dict[str, Any]:  # noqa: N803
    """Live state from ACS plus options, state history and archive status from the registry."""
    return await services.control.get(validate_recording_id(recordingId))


def _transition_endpoint(transition: Transition) -> Callable[..., Any]:
    async def endpoint(recordingId: RecordingIdPath, services: Services) -> dict[str, Any]:  # noqa: N803
        return await services.control.transition(validate_recording_id(recordingId), transition)

    endpoint.__doc__ = f"{transition.action.capitalize()} the recording."
    return endpoint


for _transition, _summary in (
    (PAUSE, "Pause a recording (allowed when active)."),
    (RESUME, "Resume a paused recording (allowed when inactive)."),
):
    item.add_api_route(
        f"/api/recordings/{{recordingId:path}}/{_transition.action}",
        _transition_endpoint(_transition),
        methods=["POST"],
        response_model=StateChangeResponse,
        responses=problem_responses(400, 401, 404, 409, 502, 503),
        summary=_summary,
        name=f"{_transition.action}_recording",
    )

item.add_api_route(
    "/api/recordings/{recordingId:path}",
    _transition_endpoint(STOP),
    methods=["DELETE"],
    response_model=StateChangeResponse,
    responses=problem_responses(400, 401, 404, 409, 502, 503),
    summary="Stop a recording (allowed when active or inactive).",
    name="stop_recording",
)
