"""What each route does: ACS through :class:`RecordingService`, bookkeeping in the registry.

Everything here is free of HTTP types so it runs the same under uvicorn, under the Functions
host and in a test. The recording operations are coroutines: ACS is awaited on the event loop
and only table reads go to a worker thread. Failures leave as :class:`ProblemError` (the API
renders them).

The registry decides which transitions are allowed (pause from ``active``, resume from
``inactive``, stop from either) without a round trip to ACS; ACS is the source of truth for the
live state, so before refusing, the API asks ACS (the registry may lag: its writes land just
after the answer, see ``registry.writer``, and another instance may have written since).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from recording_pipeline.api import problems
from recording_pipeline.api.problems import ProblemError
from recording_pipeline.api.service import (
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
from recording_pipeline.api.timing import measure
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.input_rules import is_opaque_token, load_json
from recording_pipeline.recording_options import RecordingOptions
from recording_pipeline.registry.schema import PARTITION_KEY, ROW_KEY
from recording_pipeline.registry.states import StateChange, start_change, state_change
from recording_pipeline.registry.table import Registry, RegistryUnavailableError
from recording_pipeline.registry.views import RegistryEntry
from recording_pipeline.registry.writer import DeferredRegistryWrites, written_within

LOGGER = logging.getLogger(__name__)

RECORDINGS_PATH = "/api/recordings"
REGISTRY_RETRY_AFTER_SECONDS = 5
#: Recent Idempotency-Keys this process remembers (see ``RecordingControl._started_by_key``).
REMEMBERED_STARTS = 1024
#: How long a list waits for this process's queued changes, so it shows a client's own writes.
LIST_FLUSH_SECONDS = 2.0


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
    :param writes: writes the registry after the answer (and shows them until written).
    """

    def __init__(
        self, service: RecordingService, registry: Registry, writes: DeferredRegistryWrites
    ) -> None:
        self._service = service
        self._registry = registry
        self._writes = writes
        #: Idempotency-Key -> recording id of this process's recent starts: the key's entity
        #: is completed after the answer, and a retry may come first.
        self._started_by_key: OrderedDict[str, str] = OrderedDict()

    async def start(
        self, options: RecordingOptions, *, callback_url: str, idempotency_key: str | None
    ) -> StartOutcome:
        """Start a recording once, however often the same Idempotency-Key is retried.

        :raises ProblemError: 404 unknown call, 409, 422 key reused, 502, 503.
        """
        now = utc_now()
        repeat_id = first_sent = None
        if idempotency_key is not None:
            claim = await registry_call_in_thread(
                self._registry.claim_idempotency, idempotency_key, options.fingerprint(), at=now
            )
            if not claim.is_new and claim.request_hash != options.fingerprint():
                raise problems.idempotency_key_reused()
            started = claim.recording_id or self._started_by_key.get(idempotency_key)
            if started is not None:
                entry = await registry_call_in_thread(self._writes.get, started)
                if entry is not None:
                    return StartOutcome(_start_body(entry.recording_id, entry.state, None), True)
            repeat_id, first_sent = repeatability_id(idempotency_key), claim.created_at
        self._ensure_capacity()
        locator = "serverCallId" if options.server_call_id is not None else "callConnectionId"
        try:
            with measure("acs"):
                live = await self._service.start(
                    options,
                    callback_url=options.callback_url or callback_url,
                    repeatability_request_id=repeat_id,
                    first_sent=first_sent,
                )
        except AcsNotFoundError as error:
            raise problems.call_not_found(locator) from error
        except AcsConflictError as error:
            raise await self._call_already_recorded(options, locator) from error
        except AcsError as error:
            raise problem_for(error) from error
        completion = None
        if idempotency_key is not None:
            key, recording_id = idempotency_key, live.recording_id
            self._started_by_key[key] = recording_id
            while len(self._started_by_key) > REMEMBERED_STARTS:
                self._started_by_key.popitem(last=False)

            def completion() -> None:
                self._registry.complete_idempotency(key, recording_id)

        self._writes.submit(
            live.recording_id,
            start_change(live.recording_id, options, state=live.state, at=now),
            then=completion,
            creates=True,
        )
        LOGGER.info("recording started in state %s", live.state)
        return StartOutcome(_start_body(live.recording_id, live.state, live.recording_kind), False)

    async def get(self, recording_id: str) -> dict[str, Any]:
        """Live state from ACS plus the registry's view (both asked at once).

        :raises ProblemError: 404 when the registry does not know the id; 502/503 from ACS.
        """
        live_task = asyncio.ensure_future(self._live(recording_id))
        try:
            entry = await registry_call_in_thread(self._writes.get, recording_id)
        except BaseException:
            live_task.cancel()
            raise
        try:
            live: LiveRecording | None = await live_task
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

    async def transition(self, recording_id: str, transition: Transition) -> dict[str, Any]:
        """Pause, resume or stop, if the recording's state allows it.

        The check may use this process's copy of the entity (no table read): when the copy
        allows the transition, ACS has the final word; when it does not, the entity is read
        again, and if that still refuses, ACS's live state decides (a refusal is never based on
        a stale copy).

        :raises ProblemError: 404 unknown, 409 not allowed now, 502/503 from ACS or registry.
        """
        entry = self._writes.peek(recording_id)
        if entry is None or entry.state not in transition.allowed_from:
            entry = await registry_call_in_thread(self._writes.get, recording_id)
        already_done = (
            entry is None or entry.state not in transition.allowed_from
        ) and await self._check_with_acs(recording_id, transition, entry)
        if already_done:  # a repeated stop
            return {"recordingId": recording_id, "state": transition.target}
        self._ensure_capacity()
        operation = {"pause": self._service.pause, "resume": self._service.resume}.get(
            transition.action, self._service.stop
        )
        try:
            with measure("acs"):
                await operation(recording_id)
        except AcsNotFoundError as error:
            self._record(recording_id, StateChange("stopped", iso(utc_now()), "acs"))
            if transition is STOP:
                return {"recordingId": recording_id, "state": "stopped"}
            raise problems.conflict(
                "ACS no longer has this recording (it was stopped or the call ended).",
                field="recordingId",
            ) from error
        except AcsError as error:
            raise problem_for(error) from error
        self._record(recording_id, StateChange(transition.target, iso(utc_now()), "api"))
        return {"recordingId": recording_id, "state": transition.target}

    async def list_recordings(
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
        try:  # a client lists what it just started or stopped
            await written_within(self._writes.queued(), LIST_FLUSH_SECONDS)
        except Exception as error:  # the list itself still answers from the table
            LOGGER.info("listing without this instance's latest changes: %s", error)
        page = await registry_call_in_thread(
            self._registry.list_recordings,
            limit=limit,
            position=decode_continuation(continuation_token),
            server_call_id=server_call_id,
            state=state,
            archive_status=archive_status,
        )
        return {"items": page.items, "continuationToken": encode_continuation(page.next_position)}

    async def _live(self, recording_id: str) -> LiveRecording:
        with measure("acs"):
            return await self._service.get(recording_id)

    def _ensure_capacity(self) -> None:
        """Refuse (503) before ACS is called when the deferred writes are backed up."""
        try:
            self._writes.ensure_capacity()
        except RegistryUnavailableError as error:
            raise _registry_problem(error) from error

    async def _check_with_acs(
        self, recording_id: str, transition: Transition, entry: RegistryEntry | None
    ) -> bool:
        """Let the transition through when ACS's live state allows it; else refuse.

        The registry refused (or does not know the id), but it may lag behind ACS: a write
        still on its way from another instance, or lost in a crash. When ACS cannot be asked,
        the registry's answer stands.

        A stop is idempotent: a recording the registry has as ``stopped`` (a final state) and
        ACS no longer has live (ACS answers 404 for a stopped recording) is already where the
        client wants it, so the stop succeeds again without calling ACS or writing anything.

        :returns: True when the transition has already happened (a repeated stop).
        :raises ProblemError: 404 when neither knows the recording, 409 when ACS's (or, without
            ACS, the registry's) state does not allow the transition.
        """
        try:
            live: LiveRecording | None = await self._live(recording_id)
        except AcsNotFoundError:
            live = None
        except AcsError as error:
            LOGGER.warning("ACS could not confirm a refusal: %s", error.message)
            live = None
        if live is not None and live.state in transition.allowed_from:
            return False
        if transition is STOP and live is None and entry is not None and entry.state == "stopped":
            return True
        if entry is None and live is None:
            raise problems.recording_not_found(recording_id)
        state = live.state if live is not None else entry.state if entry is not None else "unknown"
        raise problems.transition_not_allowed(transition.action, state, transition.allowed_from)

    async def _call_already_recorded(self, options: RecordingOptions, locator: str) -> ProblemError:
        """409 saying the call is being recorded, and by which recording when the registry
        knows one of this call that is not stopped (it may not: another app may record it)."""
        holder = None
        if options.server_call_id is not None:
            try:
                page = await self.list_recordings(limit=100, server_call_id=options.server_call_id)
            except ProblemError:
                page = {"items": []}
            live = [item for item in page["items"] if item.get("state") in STOP.allowed_from]
            if live:
                holder = max(live, key=lambda item: item.get("createdAt") or "")["recordingId"]
        return problems.call_already_recorded(locator, holder)

    def _record(self, recording_id: str, change: StateChange) -> None:
        """Queue the change for the registry; the answer does not wait for the write.

        A stop, once written, is also indexed for the reconciler (``registry.pending``), which
        looks for stopped recordings whose archive does not come.
        """
        index = None
        if change.state == "stopped":
            index = functools.partial(self._registry.index_stopped, recording_id, change.at)
        self._writes.submit(
            recording_id, state_change(recording_id, change, create_if_missing=True), then=index
        )


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
        {"pk": position.get(PARTITION_KEY), "rk": position.get(ROW_KEY)}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continuation(token: str | None) -> dict[str, str | None] | None:
    """Invert :func:`encode_continuation`.

    :raises ProblemError: 400 naming ``continuationToken`` when it is not one this API issued
        (whatever it decodes to: only the short printable values the Table service issues pass).
    """
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = load_json(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise _bad_token() from error
    if not isinstance(decoded, dict) or not all(
        decoded.get(key) is None
        or (isinstance(decoded[key], str) and is_opaque_token(decoded[key]))
        for key in ("pk", "rk")
    ):
        raise _bad_token()
    if not decoded.get("pk") and not decoded.get("rk"):
        raise _bad_token()
    return {PARTITION_KEY: decoded.get("pk"), ROW_KEY: decoded.get("rk")}


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
        raise _registry_problem(error) from error


def _registry_problem(error: RegistryUnavailableError) -> ProblemError:
    LOGGER.warning("registry unavailable: %s", error)
    return problems.registry_unavailable(retry_after_seconds=REGISTRY_RETRY_AFTER_SECONDS)


async def registry_call_in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """:func:`registry_call` in a worker thread (table I/O must not block the event loop)."""
    return await asyncio.to_thread(registry_call, function, *args, **kwargs)


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
