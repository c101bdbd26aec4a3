"""Request handlers per area, each a thin adapter: wire.py in, provider/simulator call, wire.py out.

Recording paths are matched on the raw (still percent-encoded) path, because recording ids may
contain ``/``, ``+`` and ``=``, which a decoded path would split or mangle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from emulator.constants import JWKS_PATH, OIDC_METADATA_PATH, TOPIC_PATH
from emulator.errors import (
    ClockIsNotManual,
    InvalidField,
    MethodNotAllowed,
    ObjectNotFound,
    RouteNotFound,
    TopicNotConfigured,
)
from emulator.service import EmulatorService
from emulator.topic import EventGridTopicProvider
from emulator.wire import (
    empty_response,
    file_blocks,
    json_response,
    parse_range,
    path_segment,
    raw_path,
    read_json,
    write_body,
)

SERVICE_KEY = web.AppKey("service", EmulatorService)

_RECORDING = re.compile(r"^/calling/recordings/(?P<id>[^/]+?)(?::(?P<action>pause|resume))?$")
_OBJECT = re.compile(r"^/v1/objects/(?P<doc>[^/]+)(?:/content/(?P<kind>[^/]+))?$")
_CALL_ACTION = re.compile(r"^/emulator/calls/(?P<call>[^/]+?):(?P<action>hangup|join|leave)$")


@dataclass(frozen=True)
class Route:
    """What a request is: its operation name (for faults and logs) and its path parameters."""

    operation: str
    params: dict[str, str]


def resolve(method: str, path: str) -> Route | None:
    """Name the Call Recording (or topic) operation of a request; ``None`` for other paths."""
    if path == TOPIC_PATH:
        return Route("publish_events", {}) if method == "POST" else None
    if path == "/calling/recordings":
        return Route("start_recording", {}) if method == "POST" else None
    match = _RECORDING.match(path)
    if match:
        action = match.group("action")
        operation = {
            ("GET", None): "get_recording_properties",
            ("DELETE", None): "stop_recording",
            ("POST", "pause"): "pause_recording",
            ("POST", "resume"): "resume_recording",
        }.get((method, action))
        return (
            Route(operation, {"recordingId": path_segment(match.group("id"))})
            if operation
            else None
        )
    match = _OBJECT.match(path)
    if match:
        kind = match.group("kind")
        if method in ("GET", "HEAD") and kind:
            operation = "download_recording"
        elif method == "DELETE" and not kind:
            operation = "delete_recording"
        else:
            return None
        return Route(
            operation, {"documentId": path_segment(match.group("doc")), "kind": kind or ""}
        )
    return None


def is_acs_path(path: str) -> bool:
    return path.startswith(("/calling/recordings", "/v1/objects/"))


def is_topic_path(path: str) -> bool:
    return path == TOPIC_PATH


def service_of(request: web.Request) -> EmulatorService:
    return request.app[SERVICE_KEY]


def topic_of(request: web.Request) -> EventGridTopicProvider:
    """The custom topic; 404 when the emulator was started without ``--topic-key``."""
    topic = service_of(request).topic
    if topic is None:
        raise TopicNotConfigured(
            f"No Event Grid topic is served here: start the emulator with --topic-key "
            f"to serve {TOPIC_PATH}."
        )
    return topic


# -- Call Recording REST and media ---------------------------------------------------------------


async def acs_handler(request: web.Request) -> web.StreamResponse:
    route = resolve(request.method, raw_path(request))
    if route is None:
        if is_acs_path(raw_path(request)):
            raise MethodNotAllowed(f"{request.method} is not supported on {raw_path(request)}.")
        raise RouteNotFound(f"No such resource: {raw_path(request)}.")
    provider = service_of(request).provider
    recording_id = route.params.get("recordingId", "")
    if route.operation == "start_recording":
        body = await read_json(request)
        repeat_id = request.headers.get("Repeatability-Request-ID", "")
        return json_response(provider.start_recording(body, repeat_id), 200)
    if route.operation == "get_recording_properties":
        return json_response(provider.get_recording_properties(recording_id))
    if route.operation == "pause_recording":
        provider.pause_recording(recording_id)
        return empty_response(202)
    if route.operation == "resume_recording":
        provider.resume_recording(recording_id)
        return empty_response(202)
    if route.operation == "stop_recording":
        provider.stop_recording(recording_id)
        return empty_response(204)
    if route.operation == "delete_recording":
        provider.delete_recording(route.params["documentId"])
        return empty_response(200)
    return await _download(request, route)


async def _download(request: web.Request, route: Route) -> web.StreamResponse:
    provider = service_of(request).provider
    kind = route.params["kind"]
    media_object = provider.get_media_object(route.params["documentId"], kind)
    is_metadata = kind == "acsmetadata"
    path = media_object.metadata_path if is_metadata else media_object.content_path
    if not path.is_file():
        raise ObjectNotFound(f"Recording object '{media_object.document_id}' has no {kind} file.")
    size = path.stat().st_size
    byte_range = parse_range(request.headers.get("Range"), size)
    response = web.StreamResponse(status=200 if byte_range is None else 206)
    response.content_type = "application/json" if is_metadata else media_object.media_type
    response.headers["Accept-Ranges"] = "bytes"
    start, length = 0, size
    if byte_range is not None:
        start, length = byte_range.start, byte_range.length
        response.headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    response.content_length = length
    if request.method == "HEAD":
        await response.prepare(request)
        return response
    return await write_body(
        request, response, file_blocks(path, start, length), request.get("fault")
    )


# -- The Event Grid custom topic ---------------------------------------------------------------


async def publish_events(request: web.Request) -> web.Response:
    """``POST /api/events``: the key was checked by ``app.auth_check``."""
    topic_of(request).publish_events(
        await request.read(),
        content_type=request.headers.get("Content-Type"),
        api_version=request.query.get("api-version"),
    )
    return empty_response(200)


async def list_topic_events(request: web.Request) -> web.Response:
    """What the topic accepted, oldest first: ``{"events": [{"event", "receivedAt"}]}``."""
    return json_response({"events": topic_of(request).received})


# -- Simulation API ------------------------------------------------------------------------------


async def create_call(request: web.Request) -> web.Response:
    return json_response(service_of(request).calls.create_call(await read_json(request)), 201)


async def call_action(request: web.Request) -> web.Response:
    match = _CALL_ACTION.match(raw_path(request))
    if match is None:
        raise RouteNotFound(f"No such resource: {raw_path(request)}.")
    calls = service_of(request).calls
    server_call_id = path_segment(match.group("call"))
    action = match.group("action")
    if action == "hangup":
        return json_response(calls.hangup(server_call_id))
    body = await read_json(request)
    if action == "join":
        participant = body.get("participant", body) if isinstance(body, dict) else body
        return json_response(calls.join(server_call_id, participant))
    participant_id = body.get("participantId") if isinstance(body, dict) else None
    if not isinstance(participant_id, str):
        raise InvalidField("participantId", "is required")
    return json_response(calls.leave(server_call_id, participant_id))


async def get_call(request: web.Request) -> web.Response:
    service = service_of(request)
    server_call_id = path_segment(request.match_info["call"])
    call = service.store.calls.get(server_call_id)
    if call is None:
        raise RouteNotFound(f"Call '{server_call_id}' was not found.")
    return json_response(service.calls.describe(call))


async def advance_clock(request: web.Request) -> web.Response:
    service = service_of(request)
    clock = service.manual_clock
    if clock is None:
        raise ClockIsNotManual("The clock can be advanced only with --clock manual.")
    body = await read_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise InvalidField("seconds", "must be a number >= 0", seconds)
    return json_response({"now": clock.advance(float(seconds))})


async def get_clock(request: web.Request) -> web.Response:
    service = service_of(request)
    return json_response({"now": service.clock.now(), "manual": service.manual_clock is not None})


async def list_objects(request: web.Request) -> web.Response:
    return json_response(service_of(request).objects_report())


async def list_events(request: web.Request) -> web.Response:
    service = service_of(request)
    return json_response(
        {
            "events": service.events.published,
            "deadLettered": service.events.dead_lettered,
            "dropped": service.events.dropped,
            "callbacks": service.callbacks.sent,
        }
    )


async def get_faults(request: web.Request) -> web.Response:
    return json_response(service_of(request).faults.describe())


async def put_faults(request: web.Request) -> web.Response:
    faults = service_of(request).faults
    faults.configure_from(await read_json(request))
    return json_response(faults.describe())


async def reset(request: web.Request) -> web.Response:
    service_of(request).reset()
    return empty_response(204)


async def health(request: web.Request) -> web.Response:
    service = service_of(request)
    return json_response(
        {
            "status": "ok",
            "endpoint": service.base_url,
            "regionHost": service.config.region_host,
            "resourceId": service.config.resource_id,
            "immutableResourceId": service.config.immutable_resource_id,
            "oidcMetadataUrl": f"{service.base_url}{OIDC_METADATA_PATH}",
            "topicEndpoint": f"{service.base_url}{TOPIC_PATH}" if service.topic else None,
        }
    )


# -- Callback signing keys -----------------------------------------------------------------------


async def openid_configuration(request: web.Request) -> web.Response:
    return json_response(service_of(request).signer.openid_configuration())


async def jwks(request: web.Request) -> web.Response:
    return json_response(service_of(request).signer.jwks())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/emulator/health", health)
    app.router.add_post("/emulator/calls", create_call)
    app.router.add_get("/emulator/calls/{call}", get_call)
    app.router.add_post("/emulator/calls/{tail:[^/]+}", call_action)
    app.router.add_post("/emulator/clock:advance", advance_clock)
    app.router.add_get("/emulator/clock", get_clock)
    app.router.add_get("/emulator/objects", list_objects)
    app.router.add_get("/emulator/events", list_events)
    app.router.add_get("/emulator/topic-events", list_topic_events)
    app.router.add_get("/emulator/faults", get_faults)
    app.router.add_put("/emulator/faults", put_faults)
    app.router.add_post("/emulator/faults", put_faults)
    app.router.add_post("/emulator/reset", reset)
    app.router.add_get(OIDC_METADATA_PATH, openid_configuration)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_post(TOPIC_PATH, publish_events)
    app.router.add_route("*", "/{tail:.*}", acs_handler)
