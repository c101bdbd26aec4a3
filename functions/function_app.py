"""Azure Functions entry point: wiring only, the logic lives in ``recording_pipeline``.

- ``http_app_func``: every ``/api/...`` route of the recording API. Its auth level follows
  ``API_AUTH``: FUNCTION with ``functionKey`` and ``both`` (the host checks the function key
  before the request reaches the app), ANONYMOUS with ``entraId`` (no key; the app requires an
  Entra ID bearer token, as it also does on top of the key with ``both``). The host's key check
  comes before the app, so it cannot accept "a key or a token": ``both`` means both.
- ``callbacks`` and ``health`` (ANONYMOUS): ACS cannot send a function key, so callbacks are
  authenticated by ACS's JWT inside the app; health must answer probes without a key. Both hand
  the request to the same ASGI app, so there is one implementation of every route.
  The Functions host matches overlapping routes in the alphabetical order of the function
  names (azure-functions-host#9876), not by specificity, so these two names must sort before
  the catch-all's ``http_app_func`` (a test checks it).
- ``archive_recording_event``: the queue trigger on ``%EVENTS_QUEUE%`` (connection
  ``RecordingQueue``, identity-based in Azure) that runs the archiver.
- ``reconcile_archive``: the timer (NCRONTAB from the app setting ``RECONCILE_SCHEDULE``,
  every 10 minutes by default) that runs the reconciler: dead letters and outage-poisoned events
  back to the queue, overdue and lost recordings marked, failed ACS deletions retried. Its name
  carries "archive" so the archive-failure alert also sees a run that fails.

The Functions adapter percent-decodes the path itself, strictly, and raises on bytes that are
not UTF-8 (``%FF``) before the app runs; such a request gets the app's own 400 problem naming
the parameter (``request_guard.path_problem``), not a 500.

Settings are validated when this module is imported (``create_app``), so a misconfigured app
fails at start with one message listing every problem. At interpreter exit the registry changes
still queued are written (best effort: a killed process cannot).
"""

from __future__ import annotations

import atexit
import json
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from recording_pipeline.api.app import create_app, platform_base_url
from recording_pipeline.api.problems import PROBLEM_MEDIA_TYPE
from recording_pipeline.api.request_guard import path_problem
from recording_pipeline.archive.archiver import handle_event_message
from recording_pipeline.reconcile.run import run_scheduled
from recording_pipeline.settings import Settings

settings = Settings.from_env()
api = create_app(settings, host_checks_keys=True, public_base_url=platform_base_url())
atexit.register(api.state.services.writes.close, 10.0)
app = func.AsgiFunctionApp(
    app=api,
    http_auth_level=(
        func.AuthLevel.FUNCTION if settings.requires_function_key else func.AuthLevel.ANONYMOUS
    ),
)
_adapter_handle = app.middleware.handle_async


async def _handle_or_refuse(req: func.HttpRequest, context: Any = None) -> func.HttpResponse:
    """The adapter's handling, with a path it cannot decode answered as the app answers it."""
    try:
        return await _adapter_handle(req, context)
    except UnicodeDecodeError:
        problem = path_problem(urlsplit(req.url).path.encode("utf-8"))
        if problem is None:
            raise
        return func.HttpResponse(
            json.dumps(problem.body()), status_code=problem.status, mimetype=PROBLEM_MEDIA_TYPE
        )


app.middleware.handle_async = _handle_or_refuse  # type: ignore[method-assign]


async def _to_api(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Serve ``req`` with the ASGI app, running its start-up once as the catch-all route does."""
    if not app.startup_task_done:
        if not await app.middleware.notify_startup():
            raise RuntimeError("the recording API failed to start")
        app.startup_task_done = True
    return await app.middleware.handle_async(req, context)


@app.function_name(name="callbacks")
@app.route(route="callbacks", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def callbacks(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return await _to_api(req, context)


@app.function_name(name="health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return await _to_api(req, context)


@app.function_name(name="archive_recording_event")
@app.queue_trigger(arg_name="message", queue_name="%EVENTS_QUEUE%", connection="RecordingQueue")
def archive_recording_event(message: func.QueueMessage) -> None:
    handle_event_message(
        message.get_body(), dequeue_count=message.dequeue_count or 1, message_id=message.id
    )


@app.function_name(name="reconcile_archive")
@app.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
def reconcile_archive(timer: func.TimerRequest) -> None:
    run_scheduled()
