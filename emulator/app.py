"""Builds the aiohttp application from one explicit, ordered middleware list.

aiohttp runs middlewares outermost first, so the list reads in the order a request meets
them, and each response travels back out through the same steps in reverse.
"""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from emulator.auth import decode_access_key, verify_request
from emulator.constants import SUPPORTED_API_VERSIONS
from emulator.errors import (
    InjectedServerError,
    ServiceError,
    TooManyRequests,
    UnsupportedApiVersion,
)
from emulator.faults import HTTP_KINDS
from emulator.routes import SERVICE_KEY, add_routes, is_acs_path, is_topic_path, resolve, topic_of
from emulator.service import EmulatorService
from emulator.wire import error_response, raw_path, single_block, write_body

LOG = logging.getLogger("emulator.requests")
SIGNING_KEY = web.AppKey("signing_key", bytes)


@web.middleware
async def request_id(request: web.Request, handler) -> web.StreamResponse:
    request["request_id"] = str(uuid.uuid4())
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        LOG.info(
            "%s %s -> %s in %.1f ms (request-id %s)",
            request.method,
            raw_path(request),
            status,
            (time.monotonic() - started) * 1000,
            request["request_id"],
        )


@web.middleware
async def error_serializer(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ServiceError as error:
        response = error_response(error)
    response.headers["x-ms-request-id"] = request["request_id"]
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id and not response.prepared:
        response.headers["x-ms-client-request-id"] = client_request_id
    return response


@web.middleware
async def fault_injection(request: web.Request, handler) -> web.StreamResponse:
    route = resolve(request.method, raw_path(request))
    if route is None:
        return await handler(request)
    service = request.app[SERVICE_KEY]
    fault = service.faults.draw(
        route.operation, HTTP_KINDS, recording_id=_recording_of(service, route.params)
    )
    if fault is None:
        return await handler(request)
    if fault.kind == "error":
        raise InjectedServerError(fault.status, f"Injected fault on {route.operation}.")
    if fault.kind == "throttle":
        raise TooManyRequests(
            f"Injected throttling on {route.operation}.",
            headers={"Retry-After": str(fault.retry_after)},
        )
    request["fault"] = fault
    response = await handler(request)
    if isinstance(response, web.Response) and not response.prepared:
        return await _send_faulted(request, response)
    return response


def _recording_of(service: EmulatorService, params: dict[str, str]) -> str | None:
    """The recording a request is about: named in its path, or owning the media object."""
    if "recordingId" in params:
        return params["recordingId"]
    media = service.store.objects.get(params.get("documentId", ""))
    return media.recording_id if media is not None else None


async def _send_faulted(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Apply a drop/slow fault to a buffered answer (downloads apply it while streaming)."""
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    streamed = web.StreamResponse(status=response.status, headers=response.headers)
    streamed.content_length = len(body)
    return await write_body(request, streamed, single_block(body), request["fault"])


@web.middleware
async def auth_check(request: web.Request, handler) -> web.StreamResponse:
    if is_topic_path(raw_path(request)):
        topic_of(request).check_key({k.lower(): v for k, v in request.headers.items()})
    elif is_acs_path(raw_path(request)):
        verify_request(
            request.app[SIGNING_KEY],
            method=request.method,
            raw_path_and_query=request.raw_path,
            host=request.host,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )
    return await handler(request)


@web.middleware
async def api_version_check(request: web.Request, handler) -> web.StreamResponse:
    if raw_path(request).startswith("/calling/recordings"):
        version = request.query.get("api-version")
        if version not in SUPPORTED_API_VERSIONS:
            raise UnsupportedApiVersion(
                f"Query parameter 'api-version' must be one of {', '.join(SUPPORTED_API_VERSIONS)}"
                f" (got {version!r})."
            )
    return await handler(request)


MIDDLEWARES = [
    request_id,  # outermost: every answer, errors included, is logged with its request id
    error_serializer,  # wraps all that follows, so auth, fault and handler errors share one shape
    fault_injection,  # before auth: a throttled or failing service answers before checking keys
    auth_check,  # before api-version and routing: unsigned (or keyless) requests learn nothing
    api_version_check,  # before the route handler: only versions the SDK knows are served
]


def build_app(service: EmulatorService) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=16 * 1024 * 1024)
    app[SERVICE_KEY] = service
    app[SIGNING_KEY] = decode_access_key(service.config.access_key)
    add_routes(app)

    async def close_service(_app: web.Application) -> None:
        await service.close()

    async def prepare_sinks(_app: web.Application) -> None:
        await service.events.prepare()

    app.on_startup.append(prepare_sinks)
    app.on_cleanup.append(close_service)
    return app
