"""The recording-control API as an ASGI app (FastAPI): routes, auth, error rendering, OpenAPI.

One app serves both hosts: ``function_app.py`` wraps it in ``func.AsgiFunctionApp`` (the host
checks function keys), and ``scripts/serve_api.py`` runs it under uvicorn (this app checks
``LOCAL_FUNCTION_KEY`` the same way). With ``API_AUTH`` ``entraId`` or ``both`` the app also
requires an Entra ID bearer token on every route but health and callbacks, on both hosts (see
``bearer.py``). :func:`create_app` validates the settings when it is called, so a misconfigured
deployment fails at start with one message listing every problem.

Recording ids are opaque and may contain ``/``, ``+`` and ``=``. A client percent-encodes the
id as a single path segment (``urllib.parse.quote(id, safe="")``: ``/`` -> ``%2F``, ``+`` ->
``%2B``, ``=`` -> ``%3D``). Both hosts hand the app an already-decoded path (the Functions ASGI
adapter decodes ``raw_path`` too), so the routes capture the id with a ``:path`` converter
followed by a fixed suffix (``/pause``, ``/resume``) rather than relying on the raw path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from recording_pipeline.api.archive_access import ArchiveAccess
from recording_pipeline.api.bearer import BearerTokenVerifier
from recording_pipeline.api.callbacks import CallbackTokenVerifier
from recording_pipeline.api.control import RecordingControl
from recording_pipeline.api.dependencies import ApiServices
from recording_pipeline.api.known_recordings import KnownRecordings
from recording_pipeline.api.problems import PROBLEM_MEDIA_TYPE, ProblemError, problem_response
from recording_pipeline.api.request_guard import RequestGuard
from recording_pipeline.api.routes import archive, callbacks, health, recordings
from recording_pipeline.api.rules import problem_from_body_errors
from recording_pipeline.api.service import RecordingService
from recording_pipeline.api.timing import ServerTimingMiddleware
from recording_pipeline.clients import (
    archive_blob_service_client,
    download_link_signer,
    registry_table_client,
)
from recording_pipeline.registry.table import Registry
from recording_pipeline.registry.writer import DeferredRegistryWrites
from recording_pipeline.settings import Settings, SettingsError

LOGGER = logging.getLogger(__name__)

API_TITLE = "ACS call recording API"
API_VERSION = "1.0.0"
_PROBLEM_STATUSES = ("400", "401", "403", "404", "409", "422", "502", "503")
# A request waits for at most two quick retries of a table or blob call; after that the caller
# gets a 503 with Retry-After instead of a slow answer.
_REGISTRY_PIPELINE = {
    "retry_total": 2,
    "retry_backoff_factor": 0.2,
    "connection_timeout": 5,
    "read_timeout": 20,
}
#: The routers in matching order. The archive's routes come before the recording item's, whose
#: ``{recordingId:path}`` would otherwise take ".../archive/manifest" as part of the id.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    recordings.collection,
    archive.router,
    recordings.item,
    callbacks.router,
)


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
    bearer_verifier: BearerTokenVerifier | None = None,
) -> FastAPI:
    """Build the API.

    :param settings: defaults to :meth:`Settings.from_env` (validated now).
    :keyword transport: an azure-core transport for the ACS client (tests).
    :keyword host_checks_keys: True under the Functions host, which checks function keys itself.
    :keyword public_base_url: base of the default callback URL; default: the request's own.
    :keyword callback_verifier: default: one for the settings' OIDC metadata and audience.
    :keyword bearer_verifier: default: one for the ``API_*`` settings when they require tokens.
    :raises SettingsError: listing every missing or invalid setting.
    """
    settings = Settings.from_env() if settings is None else settings
    app_checks_keys = not host_checks_keys and settings.requires_function_key
    if app_checks_keys and settings.local_function_key is None:
        raise SettingsError(
            [
                "LOCAL_FUNCTION_KEY is required when the API runs outside Azure Functions with "
                f"API_AUTH {settings.api_auth}"
            ]
        )
    if settings.requires_bearer_token and bearer_verifier is None:
        bearer_verifier = BearerTokenVerifier.from_settings(settings)
    pipeline = {} if transport is None else {"transport": transport}
    table = registry_table_client(settings, **_REGISTRY_PIPELINE)
    registry = Registry(table)
    writes = DeferredRegistryWrites(registry)
    blob_service = archive_blob_service_client(settings, **_REGISTRY_PIPELINE)
    archive_access = ArchiveAccess(
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
        archive=archive_access,
        verifier=callback_verifier
        or CallbackTokenVerifier(
            settings.callback_oidc_metadata_url, settings.acs_immutable_resource_id
        ),
        function_key_required=app_checks_keys,
        bearer_required=settings.requires_bearer_token,
        public_base_url=public_base_url,
        known=KnownRecordings(writes, service),
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
        openapi_url=None,  # served by a keyed route (routes/health.py), as the host would guard it
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    # Outermost last: Server-Timing wraps every answer, the guard's refusals included.
    app.add_middleware(
        RequestGuard,
        function_key=settings.local_function_key if app_checks_keys else None,
        bearer=bearer_verifier if settings.requires_bearer_token else None,
    )
    app.add_middleware(ServerTimingMiddleware)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = _openapi_builder(app)  # type: ignore[method-assign]
    return app


def _add_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(error)

    async def on_invalid_request(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem_response(problem_from_body_errors(list(error.errors())))

    async def on_http_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        kind = {404: "route-not-found", 405: "method-not-allowed"}.get(
            error.status_code, "http-error"
        )
        return problem_response(
            ProblemError(error.status_code, kind, str(error.detail), f"{error.detail}.")
        )

    async def on_unexpected(_: Request, error: Exception) -> JSONResponse:
        LOGGER.error("unexpected error answered with 500", exc_info=error)
        return problem_response(
            ProblemError(
                500, "internal-error", "Internal error", "The request failed unexpectedly."
            )
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI with problem answers as ``application/problem+json`` and no unused 422s."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=API_TITLE,
            version=API_VERSION,
            description=__doc__ or "",  # this module's docstring: what clients read first
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
