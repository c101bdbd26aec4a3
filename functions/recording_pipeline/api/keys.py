"""The local stand-in for Azure Functions' function keys.

In Azure the Functions host checks ``x-functions-key`` (or ``?code=``) before the request
reaches this code, because the API is registered with auth level FUNCTION. Locally nothing in
front of uvicorn does that, so the API performs the same check against ``LOCAL_FUNCTION_KEY``:
a client written against the local stack sends the key the same way it will in Azure.
"""

from __future__ import annotations

import hmac

from recording_pipeline.api.callbacks import CALLBACKS_PATH
from recording_pipeline.api.problems import unauthorized
from recording_pipeline.settings import Secret

FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"
HEALTH_PATH = "/api/health"
#: The only paths served without a function key (anonymous functions in ``function_app.py``);
#: every other path needs one, as under the Functions host's catch-all route.
ANONYMOUS_PATHS = frozenset({HEALTH_PATH, CALLBACKS_PATH})


def check_function_key(expected: Secret, *, header: str | None, query: str | None) -> None:
    """Accept the request when the header (or, as in Azure, ``?code=``) carries the key.

    :raises ProblemError: 401 without saying which part was wrong or echoing what was sent.
    """
    presented = header if header is not None else query
    if presented is None:
        raise unauthorized(
            f"A function key is required: send it in the '{FUNCTION_KEY_HEADER}' header."
        )
    if not hmac.compare_digest(presented.encode(), expected.reveal().encode()):
        raise unauthorized("The function key is not valid for this API.")
