"""What every route takes from the request besides its body: the app's services and the key check.

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
    function_key_required: bool
    public_base_url: str | None
    #: The recordings callbacks may touch.
    known: KnownRecordings


async def api_services(request: Request) -> ApiServices:
    """The services :func:`~recording_pipeline.api.app.create_app` put on the app."""
    services: ApiServices = request.app.state.services
    return services


#: A route parameter that receives the app's :class:`ApiServices`.
Services = Annotated[ApiServices, Depends(api_services)]


async def require_function_key(
    request: Request,
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
    """Check the function key where no Functions host does it (locally).

    ``request_guard.RequestGuard`` has checked it already, before the body was read; this
    dependency declares the key in the OpenAPI document and checks it once more.
    """
    services: ApiServices = request.app.state.services
    expected = services.settings.local_function_key
    if services.function_key_required and expected is not None:
        check_function_key(expected, header=x_functions_key, query=code)


#: Route dependencies of every route that needs the function key.
KEYED = [Depends(require_function_key)]

RecordingIdPath = Annotated[
    str,
    Path(
        description="The recording id percent-encoded as one path segment "
        "(`urllib.parse.quote(id, safe='')`: `/` as `%2F`, `+` as `%2B`, `=` as `%3D`).",
    ),
]
