"""Registry bookkeeping the API answers before: ordered, batched, retried, shown at once.

A conditional Table write takes 3-5 ms, as long as the ACS call it records; waiting for it would
double the latency of every start, pause, resume and stop. ACS is the source of truth for a
recording's live state and the registry is its log, so the API answers as soon as ACS has
accepted an operation and hands the log entry to :class:`DeferredRegistryWrites`:

- shown at once: the API overlays this process's unwritten changes on the recording reads it
  serves (its ``GET`` and its transition checks), so a client that pauses and then resumes or
  reads the recording sees its own writes; a list waits for the changes queued before it;
- ordered and batched: one writer thread writes a recording's changes in the order they were
  made, :data:`GROUP_COMMIT_SECONDS` after the first of them: the changes of a burst (a start
  and its callback, a pause right after) go out together as one conditional write, which
  spares CPU on the instance and Table transactions;
- retried without blocking the others: a batch that meets a table outage is due again after a
  backoff (:data:`RETRY_DELAYS`, about two minutes in all) while other recordings' batches go
  on; a change that still cannot be written, or that the table refuses for good (a 4xx), is
  logged with :data:`REGISTRY_WRITE_FAILED_MARKER` (the log alert matches it) and dropped;
- bounded: with :data:`MAX_PENDING` changes queued, :meth:`ensure_capacity` refuses new
  operations (the API answers 503 before it calls ACS);
- durable on request: a callback from ACS is acknowledged only once written, so every submit
  returns a future that completes when its batch lands and fails at its first failed attempt
  (the API then answers 503 and ACS delivers again; the redelivery is a no-op if the change
  had landed meanwhile).

A crash before a change is written loses it: its history line, and the ``State`` it set (a
callback never overrides a state the API set, see ``registry.states``). ACS's own
RecordingStateChanged callback still records the transition in the history, the ``GET`` of a
recording shows ACS's live state next to the registry's, and the API asks ACS before it refuses
an operation the registry's state would not allow (``api.control``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError

from recording_pipeline.registry.states import EntityChange
from recording_pipeline.registry.table import Registry, RegistryUnavailableError
from recording_pipeline.registry.views import RegistryEntry

LOGGER = logging.getLogger(__name__)

#: Logged (with the recording id) when a change is dropped unwritten.
REGISTRY_WRITE_FAILED_MARKER = "REGISTRY_WRITE_FAILED"
#: Seconds before each retry of a batch that met an outage; about two minutes in all.
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
#: Changes this process may hold unwritten before it refuses new operations.
MAX_PENDING = 5000
#: How long a recording's first unwritten change waits for others to share its write.
GROUP_COMMIT_SECONDS = 0.01
#: Table answers that retrying cannot change (a throttle, a timeout or a race can).
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 412, 429})
#: Queue key prefix of follow-ups (recording ids never contain control characters).
_FOLLOW_UP = "\x00follow-up:"


@dataclass(frozen=True)
class _Pending:
    #: A change of the recording entity; None for a follow-up, which runs ``then`` instead.
    change: EntityChange | None
    #: Runs after the change is written (e.g. completing an idempotency claim), queued and
    #: retried like a change of its own.
    then: Callable[[], None] | None = None
    #: The change may create the entity (a start): try a create before reading.
    creates: bool = False
    #: Completed when the change is written; failed at the first attempt that fails.
    written: Future[None] = field(default_factory=Future)


class DeferredRegistryWrites:
    """Registry changes written by one background thread, shown to readers until written.

    :param registry: where the changes go.
    :param retry_delays: seconds before each retry of a batch that met an outage.
    :param max_pending: changes held unwritten before :meth:`ensure_capacity` refuses.
    :param group_commit_seconds: how long a first change waits for others to join its write.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        max_pending: int = MAX_PENDING,
        group_commit_seconds: float = GROUP_COMMIT_SECONDS,
    ) -> None:
        self._registry = registry
        self._retry_delays = tuple(retry_delays)
        self._max_pending = max_pending
        self._group_commit_seconds = group_commit_seconds
        self._condition = threading.Condition()
        self._pending: dict[str, list[_Pending]] = {}
        #: (when its batch is due, tie-breaker, recording id): one entry per queued recording.
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        #: Recordings whose batch met a failure: (failed attempts, size of that batch). A retry
        #: writes that batch only; changes queued since wait with a fresh budget of their own.
        self._retrying: dict[str, tuple[int, int]] = {}
        self._count = 0
        self._closed = False
        #: Callers of :meth:`flush` waiting: batches are due at once while there are any.
        self._flushing = 0
        self._thread: threading.Thread | None = None

    def ensure_capacity(self) -> None:
        """Call before an ACS operation whose result will be submitted.

        :raises RegistryUnavailableError: when the backlog is full or the writer is closed.
        """
        with self._condition:
            if self._closed:
                raise RegistryUnavailableError("the registry writer is closed")
            if self._count >= self._max_pending:
                raise RegistryUnavailableError(f"{self._count} registry changes are unwritten")

    def submit(
        self,
        recording_id: str,
        change: EntityChange,
        *,
        then: Callable[[], None] | None = None,
        creates: bool = False,
    ) -> Future[None]:
        """Queue ``change``; readers see it from now on (:meth:`get`, :meth:`peek`).

        Accepted even after :meth:`close` (an operation ACS already made is still recorded).

        :param then: runs after the change is written, retried like a change (and logged with
            the marker if it never succeeds).
        :param creates: the change is likely the entity's first (a start).
        :returns: a future that completes once the change is written and fails (with
            :class:`RegistryUnavailableError` or the write's error) at the first attempt that
            fails; the change stays queued and is retried either way.
        """
        item = _Pending(change, then, creates)
        with self._condition:
            self._enqueue(recording_id, item, time.monotonic() + self._group_commit_seconds)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="registry-writer", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()
        return item.written

    def get(self, recording_id: str) -> RegistryEntry | None:
        """The stored entry with this process's unwritten changes on top.

        :raises RegistryUnavailableError: when the table cannot be read.
        """
        # Pending first, then the entity: a batch written in between is then in both, and a
        # change already stored is not applied twice; the other order could miss it.
        changes = self.pending(recording_id)
        return self._registry.get(recording_id, pending=changes)

    def peek(self, recording_id: str) -> RegistryEntry | None:
        """This process's copy of the entry (see :meth:`Registry.peek`) with its unwritten
        changes on top; no table read."""
        changes = self.pending(recording_id)
        return self._registry.peek(recording_id, pending=changes)

    def pending(self, recording_id: str) -> list[EntityChange]:
        with self._condition:
            return [
                item.change
                for item in self._pending.get(recording_id, ())
                if item.change is not None
            ]

    def pending_count(self) -> int:
        with self._condition:
            return self._count

    def queued(self) -> list[Future[None]]:
        """The futures of every change queued now (see :meth:`submit`): a reader waits for
        these, not for a flush, which changes queued later would extend on a busy instance."""
        with self._condition:
            return [item.written for items in self._pending.values() for item in items]

    def flush(self, timeout: float) -> bool:
        """Write every queued change now, waiting until each is written or dropped.

        :returns: False on timeout (during an outage, changes wait for their retries).
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                while self._count:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._condition.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued (up to ``timeout``) and let the thread end; False if some is
        left (logged with the marker)."""
        flushed = self.flush(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            left = self._count
        if not flushed:
            LOGGER.error(
                "%s: %d registry changes unwritten at shutdown", REGISTRY_WRITE_FAILED_MARKER, left
            )
        return flushed

    def _enqueue(self, key: str, item: _Pending, due: float) -> None:
        """(Holding the lock.) Append ``item``; a queue that was empty is due at ``due``."""
        queue = self._pending.setdefault(key, [])
        queue.append(item)
        self._count += 1
        if len(queue) == 1:
            self._schedule(key, due)

    def _schedule(self, recording_id: str, due: float) -> None:
        """(Holding the lock.) Queue the recording's batch to be written at ``due``."""
        heapq.heappush(self._due, (due, next(self._order), recording_id))

    def _run(self) -> None:
        while True:
            with self._condition:
                recording_id = self._next_due()
                if recording_id is None:
                    self._thread = None  # a later submit starts a new thread
                    return
                queued = self._pending[recording_id]
                _, size = self._retrying.get(recording_id, (0, len(queued)))
                batch = queued[:size]
            outcome = self._write_batch(recording_id, batch)
            with self._condition:
                self._finish(recording_id, batch, outcome)
                self._condition.notify_all()

    def _next_due(self) -> str | None:
        """(Holding the lock.) The recording whose batch is due next, waiting until it is;
        None once closed with nothing left to write."""
        while True:
            if not self._due:
                if self._closed:
                    return None
                self._condition.wait()
                continue
            due, _, recording_id = self._due[0]
            wait_seconds = due - time.monotonic()
            # A flush or a close skips the group-commit wait, never a retry's backoff.
            hurry = (self._flushing or self._closed) and recording_id not in self._retrying
            if wait_seconds > 0 and not hurry:
                self._condition.wait(wait_seconds)
                continue
            heapq.heappop(self._due)
            return recording_id

    def _finish(self, recording_id: str, batch: list[_Pending], outcome: str) -> None:
        """(Holding the lock.) Drop the batch (written or given up) or schedule its retry; queue
        the follow-ups of a written batch."""
        if outcome == "retry":
            failures, _ = self._retrying.get(recording_id, (0, len(batch)))
            self._retrying[recording_id] = (failures + 1, len(batch))
            self._schedule(recording_id, time.monotonic() + self._retry_delays[failures])
            return
        self._retrying.pop(recording_id, None)
        remaining = self._pending[recording_id][len(batch) :]
        self._count -= len(batch)
        if remaining:
            self._pending[recording_id] = remaining
            self._schedule(recording_id, time.monotonic())
        else:
            del self._pending[recording_id]
        if outcome == "written":
            for item in batch:
                if item.change is not None and item.then is not None:
                    follow_up = _Pending(None, item.then)
                    self._enqueue(_FOLLOW_UP + recording_id, follow_up, time.monotonic())

    def _write_batch(self, recording_id: str, batch: list[_Pending]) -> str:
        """One attempt at ``batch``: ``written``, ``retry`` or ``dropped``; never raises."""
        try:
            if recording_id.startswith(_FOLLOW_UP):
                for item in batch:
                    assert item.then is not None
                    item.then()
            else:
                self._registry.apply_changes(
                    recording_id,
                    [item.change for item in batch if item.change is not None],
                    creates=any(item.creates for item in batch),
                )
        except Exception as error:  # the writer thread must outlive any failure
            _settle(batch, error)
            return self._after_failure(recording_id, batch, error)
        _settle(batch, None)
        return "written"

    def _after_failure(self, recording_id: str, batch: list[_Pending], error: Exception) -> str:
        with self._condition:
            failures, _ = self._retrying.get(recording_id, (0, len(batch)))
        if _is_retryable(error) and failures < len(self._retry_delays):
            LOGGER.warning(
                "registry write failed (%s); retry %d in %.2f s",
                error,
                failures + 1,
                self._retry_delays[failures],
            )
            return "retry"
        LOGGER.error(
            "%s recording %s: %d change(s) dropped after %d attempt(s): %s",
            REGISTRY_WRITE_FAILED_MARKER,
            recording_id.removeprefix(_FOLLOW_UP),
            len(batch),
            failures + 1,
            error,
            exc_info=not isinstance(error, RegistryUnavailableError),
        )
        return "dropped"


async def written_within(futures: Sequence[Future[None]], seconds: float) -> None:
    """Wait on the event loop until every future of :meth:`DeferredRegistryWrites.submit` is
    done; never cancels them (other waiters may share them).

    :raises RegistryUnavailableError: when one failed, or some are not done in ``seconds``.
    """
    if not futures:
        return
    waiters = [asyncio.wrap_future(future) for future in futures]
    done, not_done = await asyncio.wait(
        waiters, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION
    )
    for waiter in done:
        error = waiter.exception()
        if error is not None:
            raise error
    if not_done:
        raise RegistryUnavailableError(f"{len(not_done)} change(s) not written in {seconds} s")


def _is_retryable(error: Exception) -> bool:
    """An outage, a throttle or a lost race is worth another attempt; a refusal is not."""
    if not isinstance(error, RegistryUnavailableError):
        return False  # a bug: the same change would fail the same way
    cause = error.__cause__
    if isinstance(cause, HttpResponseError) and cause.status_code is not None:
        status = cause.status_code
        return not (400 <= status < 500) or status in _RETRYABLE_CLIENT_ERRORS
    return True


def _settle(batch: list[_Pending], error: Exception | None) -> None:
    """Tell the waiters of ``batch`` the outcome of an attempt (the first outcome sticks; a
    waiter that gave up and cancelled is skipped)."""
    for item in batch:
        try:
            if error is None:
                item.written.set_result(None)
            else:
                item.written.set_exception(error)
        except InvalidStateError:
            continue  # already settled by an earlier attempt, or cancelled by its waiter
