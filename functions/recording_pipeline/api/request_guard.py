"""What every request meets first: the function key and the bearer token, then the body's size,
then its JSON.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so a key
check in a dependency comes after the body is in memory: five concurrent 19.5 MB bodies without
a key took the API from 96 MB to 354 MB and were parsed one after another. This pure ASGI
middleware sits in front of the app and, in this order:

1. on a keyed route (every path but :data:`~recording_pipeline.api.keys.ANONYMOUS_PATHS`), when
   the app checks keys itself (locally; in Azure the Functions host has checked the key before
   the app runs): 401 before a byte of the body is read; then, with ``API_AUTH`` ``entraId`` or
   ``both`` (in Azure and locally alike), the Entra ID bearer token (``bearer.py``): 401 or 403
   naming the broken rule, still before the body. A token checked against cached keys is
   verified on the event loop; one that needs a key fetch goes to a worker thread;
2. percent-encoded bytes of the path or the query that are not UTF-8 (``%FF``, ``%C0%AF``, an
   encoded lone surrogate ``%ED%A0%80``): a 400 naming the path parameter or query parameter
   that holds them. The server would decode them to U+FFFD and the route would look up an id
   nobody sent; the id rules cannot tell U+FFFD sent on purpose from bytes replaced (under the
   Functions host the adapter decodes the path before the app; ``function_app`` answers its
   failure with the same problem);
3. a ``Content-Length`` above the route's cap: 413 before a byte is read; a body without one
   (chunked) is counted while it is read and refused with 413 at the first byte past the cap, so
   no more than the cap is ever held;
4. on a keyed route, a non-empty body is read (within the cap) and, unless it says it is not
   JSON, parsed once with ``input_rules.load_json``: any parser failure (deep nesting, a huge
   integer, bytes that are not UTF-8, ...) is a 400 naming ``body``, text that is not valid
   Unicode a 400 naming its field. The same bytes are then handed to the app, whose second parse
   cannot fail where this one succeeded (the depth is capped).

Callbacks are anonymous (ACS cannot send a key): their route checks the JWT first and only then
reads the body, through the counting ``receive`` of step 3, and parses it with the same rules.

The caps come from the largest legitimate bodies: a start request with every field at its limit,
even with every character escaped as ``\\uXXXX``, stays under 64 KiB; an ACS callback delivery
is an array of a few small CloudEvents, and 256 KiB leaves ample room.
"""

from __future__ import annotations

import email.message
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams

from recording_pipeline.api.bearer import BearerTokenVerifier, presented_token
from recording_pipeline.api.callbacks import CALLBACKS_PATH
from recording_pipeline.api.control import RECORDINGS_PATH
from recording_pipeline.api.keys import (
    ANONYMOUS_PATHS,
    FUNCTION_KEY_HEADER,
    FUNCTION_KEY_QUERY,
    check_function_key,
)
from recording_pipeline.api.oidc import OidcUnavailableError
from recording_pipeline.api.problems import (
    ProblemError,
    body_too_large,
    invalid_field,
    oidc_unavailable,
    problem_response,
)
from recording_pipeline.input_rules import (
    UnreadableJsonError,
    invalid_text_path,
    is_utf8,
    load_json,
)
from recording_pipeline.settings import Secret

LOGGER = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
CALLBACK_MAX_BODY_BYTES = 256 * 1024
#: Where the guard leaves an admitted token's claims (``request.state.caller``).
CALLER_STATE = "caller"
#: Where, in an archive file's path, the recording id ends and the file name begins.
_ARCHIVE_FILES = b"/archive/files/"
NOT_UTF8 = "must be UTF-8 once percent-decoded (these bytes are not)"
#: In a scope built by the Functions adapter, whose ``raw_path`` is the path it already decoded
#: (strictly: it raises on bytes that are not UTF-8, which ``function_app`` answers with
#: :func:`path_problem`), so decoding it again would misread an id holding a literal ``%``.
FUNCTIONS_SCOPE_KEY = "azure_functions.invocation_id"

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may hold."""
    return CALLBACK_MAX_BODY_BYTES if path == CALLBACKS_PATH else MAX_BODY_BYTES


class RequestGuard:
    """Key, token, size and JSON checks before the app sees the request (see the module
    docstring).

    :param function_key: the key keyed routes need; None where the Functions host checks it
        (or where ``API_AUTH`` is ``entraId``).
    :keyword bearer: the Entra ID token check keyed routes need; None with ``functionKey``.
    """

    def __init__(
        self, app: App, *, function_key: Secret | None, bearer: BearerTokenVerifier | None = None
    ) -> None:
        self.app = app
        self._function_key = function_key
        self._bearer = bearer

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            receive = await self._admit(scope, receive)
        except ProblemError as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: dict[str, Any], receive: Receive) -> Receive:
        """The ``receive`` the app gets; raises the problem that answers the request instead."""
        path = scope.get("path", "")
        headers = Headers(scope=scope)
        keyed = path not in ANONYMOUS_PATHS
        query = QueryParams(scope.get("query_string", b""))
        if keyed and self._function_key is not None:
            check_function_key(
                self._function_key,
                header=headers.get(FUNCTION_KEY_HEADER),
                query=query.get(FUNCTION_KEY_QUERY),
            )
        if keyed and self._bearer is not None:
            claims = await _admitted_claims(self._bearer, headers, query)
            scope.setdefault("state", {})[CALLER_STATE] = claims
        check_url_text(scope)
        limit = body_limit(path)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise body_too_large(limit)
        counting = _counting_receive(receive, limit)
        if not keyed:
            return counting
        body = await read_body(counting)
        if body and _is_json(headers.get("content-type")):
            check_json_body(body)
        return _replay(body, receive)


async def _admitted_claims(
    bearer: BearerTokenVerifier, headers: Headers, query: QueryParams
) -> dict[str, Any]:
    """The claims of the request's token, or the problem that refuses it (see ``bearer.py``)."""
    try:
        token = presented_token(headers.getlist("authorization"), query)
        claims = bearer.verify_cached(token)
        if claims is None:
            claims = await run_in_threadpool(bearer.verify, token)
    except ProblemError as refusal:
        LOGGER.warning("API request refused: %s: %s", refusal.kind, refusal.detail)
        raise
    except OidcUnavailableError as error:
        LOGGER.warning("API request not verifiable now: %s", error)
        raise oidc_unavailable("Entra ID signing") from error
    return claims


def check_url_text(scope: dict[str, Any]) -> None:
    """:raises ProblemError: 400 naming the path or query parameter whose percent-encoded bytes
    are not UTF-8 (``recordingId``, ``fileName``, the query parameter's name, else ``path`` or
    ``query``)."""
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and FUNCTIONS_SCOPE_KEY not in scope:
        problem = path_problem(raw_path)
        if problem is not None:
            raise problem
    for pair in bytes(scope.get("query_string") or b"").split(b"&"):
        name, _, value = (
            unquote_to_bytes(part.replace(b"+", b" ")) for part in pair.partition(b"=")
        )
        if not is_utf8(name):
            raise invalid_field("query", NOT_UTF8)
        if not is_utf8(value):
            raise invalid_field(name.decode("utf-8"), NOT_UTF8)


def path_problem(raw_path: bytes) -> ProblemError | None:
    """The 400 for a percent-encoded path whose bytes are not UTF-8, naming its parameter."""
    if is_utf8(unquote_to_bytes(raw_path)):
        return None
    return invalid_field(_path_field(raw_path), NOT_UTF8)


def _path_field(raw_path: bytes) -> str:
    """The path parameter that holds the bytes: routes under ``/api/recordings/`` take a
    ``recordingId`` and, for an archive file, a ``fileName`` after it."""
    prefix = RECORDINGS_PATH.encode() + b"/"
    if not raw_path.startswith(prefix):
        return "path"
    item, found, file_name = raw_path[len(prefix) :].partition(_ARCHIVE_FILES)
    if found and is_utf8(unquote_to_bytes(item)) and not is_utf8(unquote_to_bytes(file_name)):
        return "fileName"
    return "recordingId"


async def read_body(receive: Receive) -> bytes:
    """The whole body from ``receive`` (a counting one raises the 413 at the cap)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def check_json_body(body: bytes) -> Any:
    """The parsed body of a route that takes a JSON object.

    :raises ProblemError: 400 naming ``body`` when it cannot be read, or the field whose text is
        not valid Unicode.
    """
    try:
        document = load_json(body)
    except UnreadableJsonError as error:
        raise invalid_field("body", f"must be a JSON object: the body {error.reason}") from None
    bad_text = invalid_text_path(document)
    if bad_text is not None:
        raise invalid_field(bad_text or "body", "must be valid Unicode text")
    return document


def _counting_receive(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise body_too_large(limit)
        return message

    return counting


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the app the body already read, then whatever the server sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides whether to parse a body as JSON (no content type counts as JSON)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
