"""What every route takes from the request besides its body: the app's services and the caller
check (function key and/or Entra ID bearer token, per ``API_AUTH``).

The routes are module-level routers (``routes/``), so they cannot close over what
:func:`~recording_pipeline.api.app.create_app` builds; each request gets it from
``request.app.state.services``, so two apps in one process (tests) never share a client. Both
dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in the thread
pool, one thread hop per request for work that never blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Query, Request

from recording_pipeline.api.archive_access import ArchiveAccess
from recording_pipeline.api.callbacks import CallbackTokenVerifier
from recording_pipeline.api.control import RecordingControl
from recording_pipeline.api.keys import FUNCTION_KEY_HEADER, check_function_key
from recording_pipeline.api.known_recordings import KnownRecordings
from recording_pipeline.api.problems import problem_responses, unauthorized
from recording_pipeline.api.request_guard import CALLER_STATE
from recording_pipeline.registry.table import Registry
from recording_pipeline.registry.writer import DeferredRegistryWrites
from recording_pipeline.settings import Settings


@dataclass(frozen=True)
class ApiServices:
    """What the routes use; tests may build it with their own clients."""

    settings: Settings
    control: RecordingControl
    registry: Registry
    writes: DeferredRegistryWrites
    archive: ArchiveAccess
    verifier: CallbackTokenVerifier
    #: The app checks the function key itself (locally, with ``functionKey`` or ``both``).
    function_key_required: bool
    #: Keyed routes need an Entra ID bearer token (``entraId`` or ``both``).
    bearer_required: bool
    public_base_url: str | None
    #: The recordings callbacks may touch.
    known: KnownRecordings


async def api_services(request: Request) -> ApiServices:
    """The services :func:`~recording_pipeline.api.app.create_app` put on the app."""
    services: ApiServices = request.app.state.services
    return services


#: A route parameter that receives the app's :class:`ApiServices`.
Services = Annotated[ApiServices, Depends(api_services)]


async def require_caller(
    request: Request,
    x_functions_key: Annotated[
        str | None,
        Header(
            alias=FUNCTION_KEY_HEADER,
            description="Function key (API_AUTH functionKey or both; Azure: the function's key, "
            "locally LOCAL_FUNCTION_KEY).",
        ),
    ] = None,
    code: Annotated[
        str | None, Query(description="The function key, as Azure also accepts it.")
    ] = None,
    authorization: Annotated[
        str | None,
        Header(
            description="`Bearer <Entra ID access token>` for API_AUDIENCE (API_AUTH entraId or "
            "both)."
        ),
    ] = None,
) -> None:
    """Check the caller once more, and declare both credentials in the OpenAPI document.

    ``request_guard.RequestGuard`` has checked them already, before the body was read: the key
    where no Functions host does it (locally), the bearer token wherever ``API_AUTH`` asks for
    one. Here the key is compared again, and a required token must have been admitted by the
    guard (it left the claims on the request); ``authorization`` is only declared, never
    verified twice.
    """
    services: ApiServices = request.app.state.services
    expected = services.settings.local_function_key
    if services.function_key_required and expected is not None:
        check_function_key(expected, header=x_functions_key, query=code)
    if services.bearer_required and CALLER_STATE not in request.scope.get("state", {}):
        raise unauthorized("An Entra ID access token is required.")


#: Route dependencies of every route that needs the caller check.
KEYED = [Depends(require_caller)]
#: ... and the refusals it may answer (403: a valid token without the client id or app role).
KEYED_RESPONSES = problem_responses(401, 403)

RecordingIdPath = Annotated[
    str,
    Path(
        description="The recording id percent-encoded as one path segment "
        "(`urllib.parse.quote(id, safe='')`: `/` as `%2F`, `+` as `%2B`, `=` as `%3D`).",
    ),
]
