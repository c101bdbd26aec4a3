"""What each route does: ACS through :class:`RecordingService`, bookkeeping in the registry.

Everything here is synchronous and free of HTTP types so it runs the same under uvicorn, under
the Functions host and in a test. Failures leave as :class:`ProblemError` (the API renders them).

The registry is the source of truth for which transitions are allowed (pause from ``active``,
resume from ``inactive``, stop from either); ACS is the source of truth for the live state.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from recording_pipeline import problems
from recording_pipeline.problems import ProblemError
from recording_pipeline.recording_rules import RecordingOptions
from recording_pipeline.recording_service import (
    AcsAuthError,
    AcsConflictError,
    AcsError,
    AcsNotFoundError,
    AcsRejectedError,
    AcsUnavailableError,
    LiveRecording,
    RecordingService,
    repeatability_id,
)
from recording_pipeline.registry import (
    RecordingMissingError,
    Registry,
    RegistryEntry,
    RegistryUnavailableError,
    StateChange,
    iso,
    utc_now,
)
from recording_pipeline.server_timing import measure

LOGGER = logging.getLogger(__name__)

RECORDINGS_PATH = "/api/recordings"
REGISTRY_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Transition:
    action: str
    allowed_from: tuple[str, ...]
    target: str


PAUSE = Transition("pause", ("active",), "inactive")
RESUME = Transition("resume", ("inactive",), "active")
STOP = Transition("stop", ("active", "inactive"), "stopped")


@dataclass(frozen=True)
class StartOutcome:
    body: dict[str, Any]
    replayed: bool


def recording_location(recording_id: str) -> str:
    """The resource path of a recording: the id percent-encoded as ONE path segment."""
    return f"{RECORDINGS_PATH}/{quote(recording_id, safe='')}"


class RecordingControl:
    """The recording operations of the API.

    :param service: ACS operations.
    :param registry: the registry table.
    :param executor: runs the ACS read and the registry read of a GET side by side.
    """

    def __init__(
        self, service: RecordingService, registry: Registry, executor: ThreadPoolExecutor
    ) -> None:
        self._service = service
        self._registry = registry
        self._executor = executor

    def start(
        self, options: RecordingOptions, *, callback_url: str, idempotency_key: str | None
    ) -> StartOutcome:
        """Start a recording once, however often the same Idempotency-Key is retried.

        :raises ProblemError: 404 unknown call, 409, 422 key reused, 502, 503.
        """
        now = utc_now()
        repeat_id = first_sent = None
        if idempotency_key is not None:
            claim = registry_call(
                self._registry.claim_idempotency, idempotency_key, options.fingerprint(), at=now
            )
            if not claim.is_new and claim.request_hash != options.fingerprint():
                raise problems.idempotency_key_reused()
            if claim.recording_id is not None:
                entry = registry_call(self._registry.get, claim.recording_id)
                if entry is not None:
                    return StartOutcome(_start_body(entry.recording_id, entry.state, None), True)
            repeat_id, first_sent = repeatability_id(idempotency_key), claim.created_at
        locator = "serverCallId" if options.server_call_id is not None else "callConnectionId"
        try:
            with measure("acs"):
                live = self._service.start(
                    options,
                    callback_url=options.callback_url or callback_url,
                    repeatability_request_id=repeat_id,
                    first_sent=first_sent,
                )
        except AcsNotFoundError as error:
            raise problems.call_not_found(locator) from error
        except AcsError as error:
            raise problem_for(error) from error
        registry_call(
            self._registry.record_started, live.recording_id, options, state=live.state, at=now
        )
        if idempotency_key is not None:
            registry_call(self._registry.complete_idempotency, idempotency_key, live.recording_id)
        LOGGER.info("recording started in state %s", live.state)
        return StartOutcome(_start_body(live.recording_id, live.state, live.recording_kind), False)

    def get(self, recording_id: str) -> dict[str, Any]:
        """Live state from ACS plus the registry's view.

        :raises ProblemError: 404 when the registry does not know the id; 502/503 from ACS.
        """
        live_future: Future[LiveRecording] = self._executor.submit(
            contextvars.copy_context().run, self._live, recording_id
        )
        entry = registry_call(self._registry.get, recording_id)
        try:
            live: LiveRecording | None = live_future.result()
        except AcsNotFoundError:
            live = None
        except AcsError as error:
            if entry is None:
                raise problems.recording_not_found(recording_id) from error
            raise problem_for(error) from error
        if entry is None:
            raise problems.recording_not_found(recording_id)
        return {
            "recordingId": recording_id,
            "live": None
            if live is None
            else {"state": live.state, "recordingKind": live.recording_kind},
            "registry": _registry_view(entry),
        }

    def transition(self, recording_id: str, transition: Transition) -> dict[str, Any]:
        """Pause, resume or stop, if the registry's state allows it.

        The check may use this process's cached copy of the entity: when the copy allows the
        transition, ACS has the final word and the ETag-guarded write re-reads on a conflict;
        when it does not, the entity is read again before answering 409.

        :raises ProblemError: 404 unknown, 409 not allowed now, 502/503 from ACS.
        """
        entry = registry_call(self._registry.get, recording_id, allow_cached=True)
        if entry is None or entry.state not in transition.allowed_from:
            entry = registry_call(self._registry.get, recording_id)  # never refuse on a stale copy
        if entry is None:
            raise problems.recording_not_found(recording_id)
        if entry.state not in transition.allowed_from:
            raise problems.transition_not_allowed(
                transition.action, entry.state, transition.allowed_from
            )
        operation = {"pause": self._service.pause, "resume": self._service.resume}.get(
            transition.action, self._service.stop
        )
        try:
            with measure("acs"):
                operation(recording_id)
        except AcsNotFoundError as error:
            self._record(recording_id, StateChange("stopped", iso(utc_now()), "acs"), entry)
            if transition is STOP:
                return {"recordingId": recording_id, "state": "stopped"}
            raise problems.conflict(
                "ACS no longer has this recording (it was stopped or the call ended).",
                field="recordingId",
            ) from error
        except AcsError as error:
            raise problem_for(error) from error
        self._record(recording_id, StateChange(transition.target, iso(utc_now()), "api"), entry)
        return {"recordingId": recording_id, "state": transition.target}

    def list_recordings(
        self,
        *,
        limit: int,
        continuation_token: str | None = None,
        server_call_id: str | None = None,
        state: str | None = None,
        archive_status: str | None = None,
    ) -> dict[str, Any]:
        """One page of recording summaries from the registry (ACS is not asked).

        :raises ProblemError: 400 for a continuation token this API did not issue; 503.
        """
        page = registry_call(
            self._registry.list_recordings,
            limit=limit,
            position=decode_continuation(continuation_token),
            server_call_id=server_call_id,
            state=state,
            archive_status=archive_status,
        )
        return {"items": page.items, "continuationToken": encode_continuation(page.next_position)}

    def _live(self, recording_id: str) -> LiveRecording:
        with measure("acs"):
            return self._service.get(recording_id)

    def _record(self, recording_id: str, change: StateChange, known: RegistryEntry) -> None:
        try:
            registry_call(self._registry.record_state, recording_id, change, known=known)
        except RecordingMissingError as error:
            raise problems.recording_not_found(recording_id) from error


def problem_for(error: AcsError) -> ProblemError:
    """The answer for an ACS outcome; the message is ours, never a credential or a trace."""
    if isinstance(error, AcsNotFoundError):
        return problems.ProblemError(404, "not-found-at-acs", "Not found at ACS", error.message)
    if isinstance(error, AcsConflictError):
        return problems.conflict(error.message)
    if isinstance(error, AcsRejectedError):
        return problems.ProblemError(
            400, "rejected-by-acs", "ACS rejected the request", error.message
        )
    if isinstance(error, AcsAuthError):
        return problems.upstream_misconfigured(error.message)
    if isinstance(error, AcsUnavailableError):
        return problems.upstream_unavailable(
            error.message, retry_after_seconds=error.retry_after_seconds
        )
    return problems.upstream_unavailable(error.message, retry_after_seconds=5)


def encode_continuation(position: dict[str, str | None] | None) -> str | None:
    """The table position as an opaque URL-safe token (clients must not build or parse it)."""
    if position is None:
        return None
    raw = json.dumps(
        {"pk": position.get("PartitionKey"), "rk": position.get("RowKey")}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continuation(token: str | None) -> dict[str, str | None] | None:
    """Invert :func:`encode_continuation`.

    :raises ProblemError: 400 naming ``continuationToken`` when it is not one this API issued.
    """
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise _bad_token() from error
    if not isinstance(decoded, dict) or not all(
        isinstance(decoded.get(key), str | None) for key in ("pk", "rk")
    ):
        raise _bad_token()
    if not decoded.get("pk") and not decoded.get("rk"):
        raise _bad_token()
    return {"PartitionKey": decoded.get("pk"), "RowKey": decoded.get("rk")}


def _bad_token() -> ProblemError:
    return problems.invalid_field(
        "continuationToken", "is not a token this API issued; use the value of a previous page"
    )


def registry_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a registry operation, timed as ``registry``; an outage becomes a 503 problem."""
    try:
        with measure("registry"):
            return function(*args, **kwargs)
    except RegistryUnavailableError as error:
        LOGGER.warning("registry unavailable: %s", error)
        raise problems.registry_unavailable(
            retry_after_seconds=REGISTRY_RETRY_AFTER_SECONDS
        ) from error


def _start_body(recording_id: str, state: str, kind: str | None) -> dict[str, Any]:
    return {
        "recordingId": recording_id,
        "state": state,
        "recordingKind": kind,
        "location": recording_location(recording_id),
    }


def _registry_view(entry: RegistryEntry) -> dict[str, Any]:
    return {
        "serverCallId": entry.server_call_id,
        "callConnectionId": entry.call_connection_id,
        "options": entry.options,
        "state": entry.state,
        "stateHistory": entry.history,
        "failure": entry.failure,
        "createdAt": entry.created_at,
        "updatedAt": entry.updated_at,
        "archive": entry.archive,
    }
