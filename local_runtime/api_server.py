"""The recording API served on this machine (``python -m scripts.serve_api [--host] [--port]``).

The same ASGI app Azure Functions runs, under uvicorn, configured by the same environment
variables as the Function App (see ``functions/recording_pipeline/settings.py``), pointed at the
emulator and Azurite. Because nothing in front of uvicorn checks function keys, the app checks
``x-functions-key`` against ``LOCAL_FUNCTION_KEY`` itself. Bad settings stop it before it
listens, with one message that lists every problem.

HTTP parsing and the event loop: uvicorn's C implementations (``httptools``, ``uvloop``) when
they are installed, else its pure-Python ones (``h11``, ``asyncio``); ``--http``/``--loop`` pick
one explicitly. This only concerns local serving: in Azure the Functions host serves HTTP and
hands requests to the app through ``AsgiFunctionApp``, so neither is deployed.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from urllib.parse import unquote_plus

DEFAULT_PORT = 7071  # the Functions host's local port, so clients need no change


def resolve_server(http: str = "auto", loop: str = "auto") -> tuple[str, str]:
    """The HTTP parser and event loop uvicorn uses for these choices (``auto`` resolved).

    Resolved here, the same way uvicorn resolves ``auto``, so the server can be named in logs and
    benchmark reports.
    """
    if http == "auto":
        http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


def server_description(http: str = "auto", loop: str = "auto") -> str:
    """For example ``uvicorn 0.54.0 (http=httptools, loop=uvloop)``."""
    from importlib.metadata import version

    parser, event_loop = resolve_server(http, loop)
    return f"uvicorn {version('uvicorn')} (http={parser}, loop={event_loop})"


#: Query parameters whose value is a credential: the function key (``code``, which the
#: Functions host reads from the query) and an OAuth ``access_token`` (RFC 6750; the API refuses
#: it, but uvicorn logs the request line first).
SECRET_QUERY_PARAMETERS = frozenset({"code", "access_token"})


def redact_query_secrets(path: str) -> str:
    """``path`` with the value of each :data:`SECRET_QUERY_PARAMETERS` parameter replaced by
    ``***``; a parameter's name is compared decoded (``access%5Ftoken`` is ``access_token``)."""
    route, separator, query = path.partition("?")
    if not separator:
        return path
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        if unquote_plus(name).lower() in SECRET_QUERY_PARAMETERS:
            part = f"{name}{equals}***" if equals else part
        parts.append(part)
    return f"{route}?{'&'.join(parts)}"


class RedactQuerySecrets(logging.Filter):
    """Hide a function key (``?code=``) or a token (``?access_token=``) in uvicorn's access log.

    uvicorn logs each request as ``(client, method, path with query, http version, status)``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_query_secrets(str(args[2]))
            record.args = tuple(args)
        return True


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    http: str = "auto",
    loop: str = "auto",
) -> int:
    """Run until interrupted; 2 when the settings are invalid."""
    # Imported here: the benchmark and the tests use this module's helpers without the app.
    import uvicorn

    from recording_pipeline.api.app import create_app
    from recording_pipeline.settings import SettingsError

    try:
        app = create_app()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    http, loop = resolve_server(http, loop)
    print(f"serving with {server_description(http, loop)}", file=sys.stderr)
    logging.getLogger("uvicorn.access").addFilter(RedactQuerySecrets())
    uvicorn.run(app, host=host, port=port, log_level=log_level, http=http, loop=loop)
    return 0
