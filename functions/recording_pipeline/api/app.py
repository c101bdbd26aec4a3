"""The recording-control API as an ASGI app (FastAPI): routes, auth, error rendering, OpenAPI.

One app serves both hosts: ``function_app.py`` wraps it in ``func.AsgiFunctionApp`` (the host
checks function keys), and ``scripts/serve_api.py`` runs it under uvicorn (this app checks
``LOCAL_FUNCTION_KEY`` the same way). :func:`create_app` validates the settings when it is
called, so a misconfigured deployment fails at start with one message listing every problem.

Recording ids are opaque and may contain ``/``, ``+`` and ``=``. A client percent-encodes the
id as a single path segment (``urllib.parse.quote(id, safe="")``: ``/`` -> ``%2F``, ``+`` ->
``%2B``, ``=`` -> ``%3D``). Both hosts hand the app an already-decoded path (the Functions ASGI
adapter decodes ``raw_path`` too), so the routes capture the id with a ``:path`` converter
followed by a fixed suffix (``/pause``, ``/resume``) rather than relying on the raw path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from recording_pipeline.api import problems
from recording_pipeline.api.archive_access import ArchiveAccess
from recording_pipeline.api.callbacks import (
    CallbackAuthError,
    CallbackTokenVerifier,
    OidcUnavailableError,
    bearer_token,
    parse_delivery,
    record_events,
)
from recording_pipeline.api.control import (
    PAUSE,
    RESUME,
    STOP,
    RecordingControl,
    Transition,
)
from recording_pipeline.api.keys import FUNCTION_KEY_HEADER, check_function_key
from recording_pipeline.api.problems import PROBLEM_MEDIA_TYPE, ProblemDetails, ProblemError
from recording_pipeline.api.rules import (
    problem_from_body_errors,
    validate_idempotency_key,
    validate_recording_id,
    validate_start_request,
)
from recording_pipeline.api.schemas import (
    ArchivedFileLink,
    ArchiveManifest,
    ArchiveStatus,
    CallbackAck,
    HealthResponse,
    RecordingList,
    RecordingState,
    RecordingView,
    StartRecordingRequest,
    StartRecordingResponse,
    StateChangeResponse,
)
from recording_pipeline.api.service import RecordingService
from recording_pipeline.api.timing import ServerTimingMiddleware, measure
from recording_pipeline.clients import (
    archive_blob_service_client,
    download_link_signer,
    registry_table_client,
)
from recording_pipeline.registry.table import Registry, RegistryUnavailableError
from recording_pipeline.registry.writer import DeferredRegistryWrites, written_within
from recording_pipeline.settings import Settings, SettingsError

LOGGER = logging.getLogger(__name__)

API_TITLE = "ACS call recording API"
API_VERSION = "1.0.0"
OPENAPI_PATH = "/api/openapi.json"
CALLBACKS_PATH = "/api/callbacks"
#: A callback is acknowledged once written; past this, 503 and ACS delivers it again.
CALLBACK_WRITE_TIMEOUT_SECONDS = 10.0
_PROBLEM_STATUSES = ("400", "401", "404", "409", "422", "502", "503")
# A request waits for at most two quick retries of a table or blob call; after that the caller
# gets a 503 with Retry-After instead of a slow answer.
_REGISTRY_PIPELINE = {
    "retry_total": 2,
    "retry_backoff_factor": 0.2,
    "connection_timeout": 5,
    "read_timeout": 20,
}


RecordingIdPath = Annotated[
    str,
    Path(
        description="The recording id percent-encoded as one path segment "
        "(`urllib.parse.quote(id, safe='')`: `/` as `%2F`, `+` as `%2B`, `=` as `%3D`).",
    ),
]


@dataclass(frozen=True)
class ApiServices:
    """What the routes use; tests may build it with their own clients."""

    settings: Settings
    control: RecordingControl
    registry: Registry
    writes: DeferredRegistryWrites
    archive: ArchiveAccess
    verifier: CallbackTokenVerifier
    function_key_required: bool
    public_base_url: str | None


def platform_base_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The app's public https base URL in Azure (the platform sets ``WEBSITE_HOSTNAME``).

    Callbacks must go to the app's own host name, never to a Host header a client chose.
    """
    host = (os.environ if environ is None else environ).get("WEBSITE_HOSTNAME", "").strip()
    return f"https://{host}" if host else None


def create_app(
    settings: Settings | None = None,
    *,
    transport: Any = None,
    host_checks_keys: bool = False,
    public_base_url: str | None = None,
    callback_verifier: CallbackTokenVerifier | None = None,
) -> FastAPI:
    """Build the API.

    :param settings: defaults to :meth:`Settings.from_env` (validated now).
    :keyword transport: an azure-core transport for the ACS client (tests).
    :keyword host_checks_keys: True under the Functions host, which checks function keys itself.
    :keyword public_base_url: base of the default callback URL; default: the request's own.
    :keyword callback_verifier: default: one for the settings' OIDC metadata and audience.
    :raises SettingsError: listing every missing or invalid setting.
    """
    settings = Settings.from_env() if settings is None else settings
    if not host_checks_keys and settings.local_function_key is None:
        raise SettingsError(
            ["LOCAL_FUNCTION_KEY is required when the API runs outside Azure Functions"]
        )
    pipeline = {} if transport is None else {"transport": transport}
    table = registry_table_client(settings, **_REGISTRY_PIPELINE)
    registry = Registry(table)
    writes = DeferredRegistryWrites(registry)
    blob_service = archive_blob_service_client(settings, **_REGISTRY_PIPELINE)
    archive = ArchiveAccess(
        registry,
        blob_service.get_container_client(settings.recordings_container),
        download_link_signer(settings, blob_service),
    )
    service = RecordingService.from_settings(settings, **pipeline)
    services = ApiServices(
        settings=settings,
        control=RecordingControl(service, registry, writes),
        registry=registry,
        writes=writes,
        archive=archive,
        verifier=callback_verifier
        or CallbackTokenVerifier(
            settings.callback_oidc_metadata_url, settings.acs_immutable_resource_id
        ),
        function_key_required=not host_checks_keys,
        public_base_url=public_base_url,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.archive_storage_connection_string is not None:
            await run_in_threadpool(registry.ensure_table)
        yield
        await run_in_threadpool(writes.close)
        try:
            await service.close()
        except RuntimeError as error:  # a host may run the shutdown on another event loop
            LOGGER.info("ACS client not closed: %s", error)
        table.close()
        blob_service.close()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        openapi_url=None,  # served by a keyed route below, as the Functions host would guard it
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(ServerTimingMiddleware)
    _add_error_handlers(app)
    _add_routes(app, _key_dependency(services))
    app.openapi = _openapi_builder(app)  # type: ignore[method-assign]
    return app


def _key_dependency(services: ApiServices) -> Callable[..., Awaitable[None]]:
    # async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, one thread
    # hop per request for a constant-time comparison that never blocks.
    async def require_function_key(
        x_functions_key: Annotated[
            str | None,
            Header(
                alias=FUNCTION_KEY_HEADER,
                description="Function key (Azure: the function's key; locally LOCAL_FUNCTION_KEY).",
            ),
        ] = None,
        code: Annotated[
            str | None, Query(description="The function key, as Azure also accepts it.")
        ] = None,
    ) -> None:
        expected = services.settings.local_function_key
        if services.function_key_required and expected is not None:
            check_function_key(expected, header=x_functions_key, query=code)

    return require_function_key


def _problem_response(problem: ProblemError) -> JSONResponse:
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _add_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return _problem_response(error)

    async def on_invalid_request(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return _problem_response(problem_from_body_errors(list(error.errors())))

    async def on_http_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        kind = {404: "route-not-found", 405: "method-not-allowed"}.get(
            error.status_code, "http-error"
        )
        return _problem_response(
            ProblemError(error.status_code, kind, str(error.detail), f"{error.detail}.")
        )

    async def on_unexpected(_: Request, error: Exception) -> JSONResponse:
        LOGGER.error("unexpected error answered with 500", exc_info=error)
        return _problem_response(
            ProblemError(
                500, "internal-error", "Internal error", "The request failed unexpectedly."
            )
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProblemDetails} for status in statuses}


def _add_routes(app: FastAPI, require_key: Callable[..., Awaitable[None]]) -> None:
    keyed = [Depends(require_key)]

    @app.get(OPENAPI_PATH, dependencies=keyed, include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/health", response_model=HealthResponse, tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness: answers without calling ACS or Storage (no key needed)."""
        return {"status": "ok"}

    @app.post(
        "/api/recordings",
        status_code=201,
        response_model=StartRecordingResponse,
        dependencies=keyed,
        responses=_responses(400, 401, 404, 409, 422, 502, 503),
        tags=["recordings"],
    )
    async def start_recording(
        body: StartRecordingRequest,
        request: Request,
        response: Response,
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
        services: ApiServices = request.app.state.services
        callback_url = (services.public_base_url or str(request.base_url).rstrip("/")) + (
            CALLBACKS_PATH
        )
        outcome = await services.control.start(
            options, callback_url=callback_url, idempotency_key=key
        )
        response.headers["Location"] = outcome.body["location"]
        if outcome.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return outcome.body

    @app.get(
        "/api/recordings",
        response_model=RecordingList,
        dependencies=keyed,
        responses=_responses(400, 401, 503),
        tags=["recordings"],
    )
    async def list_recordings(
        request: Request,
        server_call_id: Annotated[
            str | None,
            Query(
                alias="serverCallId", min_length=1, max_length=1024, description="Only this call."
            ),
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
        services: ApiServices = request.app.state.services
        return await services.control.list_recordings(
            limit=limit,
            continuation_token=continuation_token,
            server_call_id=server_call_id,
            state=state,
            archive_status=archive_status,
        )

    # Registered before GET /api/recordings/{recordingId:path}, which would otherwise take
    # ".../archive/manifest" as part of the (slash-containing) recording id.
    @app.get(
        "/api/recordings/{recordingId:path}/archive/manifest",
        response_model=None,
        dependencies=keyed,
        responses={
            200: {"model": ArchiveManifest, "description": "The stored manifest.json."},
            **_responses(400, 401, 404, 409, 502, 503),
        },
        tags=["archive"],
    )
    async def get_archive_manifest(recordingId: RecordingIdPath, request: Request) -> Response:  # noqa: N803
        """The recording's `manifest.json` byte for byte (409 while it is not archived)."""
        services: ApiServices = request.app.state.services
        body = await run_in_threadpool(
            services.archive.manifest, validate_recording_id(recordingId)
        )
        return Response(content=body, media_type="application/json")

    @app.get(
        "/api/recordings/{recordingId:path}/archive/files/{fileName:path}",
        response_model=ArchivedFileLink,
        dependencies=keyed,
        responses=_responses(400, 401, 404, 409, 502, 503),
        tags=["archive"],
    )
    async def get_archived_file(
        recordingId: RecordingIdPath,  # noqa: N803
        fileName: Annotated[  # noqa: N803
            str,
            Path(
                description="A file the manifest lists: `chunk-0000.wav`, "
                "`chunk-0000.metadata.json`, `manifest.json`."
            ),
        ],
        request: Request,
    ) -> dict[str, Any]:
        """A 15-minute read-only link to one archived file, with its size and MD5.

        The file is not sent through the API (recordings can be gigabytes); GET the `url` from
        Blob Storage and check the bytes against `size` and `contentMd5`.
        """
        services: ApiServices = request.app.state.services
        return await run_in_threadpool(
            services.archive.file_link, validate_recording_id(recordingId), fileName
        )

    @app.get(
        "/api/recordings/{recordingId:path}",
        response_model=RecordingView,
        dependencies=keyed,
        responses=_responses(400, 401, 404, 502, 503),
        tags=["recordings"],
    )
    async def get_recording(recordingId: RecordingIdPath, request: Request) -> dict[str, Any]:  # noqa: N803
        """Live state from ACS plus options, state history and archive status from the registry."""
        services: ApiServices = request.app.state.services
        return await services.control.get(validate_recording_id(recordingId))

    for transition, summary in (
        (PAUSE, "Pause a recording (allowed when active)."),
        (RESUME, "Resume a paused recording (allowed when inactive)."),
    ):
        app.add_api_route(
            f"/api/recordings/{{recordingId:path}}/{transition.action}",
            _transition_endpoint(transition),
            methods=["POST"],
            response_model=StateChangeResponse,
            dependencies=keyed,
            responses=_responses(400, 401, 404, 409, 502, 503),
            tags=["recordings"],
            summary=summary,
            name=f"{transition.action}_recording",
        )

    app.add_api_route(
        "/api/recordings/{recordingId:path}",
        _transition_endpoint(STOP),
        methods=["DELETE"],
        response_model=StateChangeResponse,
        dependencies=keyed,
        responses=_responses(400, 401, 404, 409, 502, 503),
        tags=["recordings"],
        summary="Stop a recording (allowed when active or inactive).",
        name="stop_recording",
    )

    @app.post(
        CALLBACKS_PATH,
        response_model=CallbackAck,
        responses=_responses(400, 401, 503),
        tags=["callbacks"],
    )
    async def callbacks(
        request: Request,
        authorization: Annotated[
            str | None, Header(description="`Bearer <JWT>` signed by ACS.")
        ] = None,
    ) -> dict[str, int]:
        """Call Automation callbacks (CloudEvents array), authenticated by ACS's JWT."""
        services: ApiServices = request.app.state.services
        await run_in_threadpool(_verify_callback_token, services.verifier, authorization)
        events, ignored = parse_delivery(await _json_body(request))
        written = record_events(services.writes, events)
        try:
            with measure("registry"):
                await written_within(written, CALLBACK_WRITE_TIMEOUT_SECONDS)
        except RegistryUnavailableError as error:
            LOGGER.warning("callback not acknowledged: %s", error)
            raise problems.registry_unavailable(retry_after_seconds=5) from error
        return {"received": len(events) + ignored, "recorded": len(written), "ignored": ignored}


def _transition_endpoint(transition: Transition) -> Callable[..., Any]:
    async def endpoint(recordingId: RecordingIdPath, request: Request) -> dict[str, Any]:  # noqa: N803
        services: ApiServices = request.app.state.services
        return await services.control.transition(validate_recording_id(recordingId), transition)

    endpoint.__doc__ = f"{transition.action.capitalize()} the recording."
    return endpoint


def _verify_callback_token(verifier: CallbackTokenVerifier, authorization: str | None) -> None:
    try:
        with measure("token"):
            verifier.verify(bearer_token(authorization))
    except CallbackAuthError as error:
        LOGGER.warning("callback refused: %s", error)
        raise problems.unauthorized(f"Callback token refused: {error}") from error
    except OidcUnavailableError as error:
        LOGGER.warning("callback not verifiable now: %s", error)
        raise problems.ProblemError(
            503,
            "oidc-unavailable",
            "Callback keys unavailable",
            "The OIDC metadata or keys could not be fetched; retry later.",
            headers={"Retry-After": "5"},
        ) from error


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as error:
        raise problems.invalid_field("body", "must be JSON") from error


def _openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI with problem answers as ``application/problem+json`` and no unused 422s."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=API_TITLE,
            version=API_VERSION,
            description=__doc__ or "",
            routes=app.routes,
        )
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                _problem_media_types(
                    operation, keep_422=(path, method) == ("/api/recordings", "post")
                )
        for unused in ("HTTPValidationError", "ValidationError"):
            document.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = document
        return document

    return build


def _problem_media_types(operation: dict[str, Any], *, keep_422: bool) -> None:
    responses = operation.get("responses", {})
    if not keep_422:
        responses.pop("422", None)
    for status in _PROBLEM_STATUSES:
        answer = responses.get(status)
        if answer and "application/json" in answer.get("content", {}):
            answer["content"] = {PROBLEM_MEDIA_TYPE: answer["content"]["application/json"]}
