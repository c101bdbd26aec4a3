"""Registry bookkeeping the API answers before: ordered, batched, retried, visible at once.

A conditional Table write takes 3-5 ms, as long as the ACS call it records; waiting for it would
double the latency of every start, pause, resume and stop. ACS is the source of truth for a
recording's live state and the registry is its log, so the API answers as soon as ACS has
accepted an operation and hands the log entry to :class:`DeferredRegistryWrites`:

- visible at once: the API shows pending changes on top of every registry read it serves, so a
  client that pauses and then resumes or reads the recording sees its own writes;
- ordered and batched: one writer thread writes a recording's changes in the order they were
  made, :data:`GROUP_COMMIT_SECONDS` after the first of them: the changes of a burst (a start
  and its callback, a pause right after) go out together as one conditional write, which
  spares CPU on the instance and Table transactions;
- retried: a table outage is retried with backoff for about two minutes; a change that still
  cannot be written is logged with :data:`REGISTRY_WRITE_FAILED_MARKER` (the log alert matches
  it) and dropped;
- bounded: with :data:`MAX_PENDING` changes queued, :meth:`ensure_capacity` refuses new
  operations (the API answers 503 before it calls ACS);
- durable on request: a callback from ACS is acknowledged only once written, so its submit
  returns a future that completes when the batch lands and fails on the first failed attempt
  (the API answers 503 and ACS delivers it again; the redelivery is a no-op if the change had
  landed meanwhile). It still shares its recording's batch with the API's own changes.

A crash in the milliseconds between an answer and its write loses that history line only: ACS's
RecordingStateChanged callback reports the same transition, and the API checks ACS before it
refuses an operation the registry's state would not allow (``recording_control``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from recording_pipeline.registry import (
    EntityChange,
    Registry,
    RegistryEntry,
    RegistryUnavailableError,
)

LOGGER = logging.getLogger(__name__)

#: Logged (with the recording id) when a change is dropped after its last retry.
REGISTRY_WRITE_FAILED_MARKER = "REGISTRY_WRITE_FAILED"
#: Seconds between attempts at one batch; about two minutes in all.
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
#: Changes this process may hold unwritten before it refuses new operations.
MAX_PENDING = 5000
#: How long a recording's first unwritten change waits for others to share its write.
GROUP_COMMIT_SECONDS = 0.01


@dataclass(frozen=True)
class _Pending:
    change: EntityChange
    #: Runs after the change is written (e.g. completing an idempotency claim).
    then: Callable[[], None] | None = None
    #: The change may create the entity (a start): try a create before reading.
    creates: bool = False
    #: Completed when the change is written; failed at the first attempt that fails.
    written: Future[None] = field(default_factory=Future)


class DeferredRegistryWrites:
    """Registry changes written by one background thread, shown to readers until written.

    :param registry: where the changes go.
    :param retry_delays: seconds to wait before each retry of a batch that could not be written.
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
        self._group_commit_seconds = group_commit_seconds
        self._retry_delays = tuple(retry_delays)
        self._max_pending = max_pending
        self._condition = threading.Condition()
        self._pending: dict[str, list[_Pending]] = {}
        #: (when its batch is due, recording id), oldest first.
        self._ready: deque[tuple[float, str]] = deque()
        self._scheduled: set[str] = set()
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
        """Queue ``change``; readers see it from now on (:meth:`get`).

        :param then: runs once the change is written (retried like it).
        :param creates: the change is likely the entity's first (a start).
        :returns: a future that completes once the change is written and fails (with
            :class:`RegistryUnavailableError` or the write's error) at the first attempt that
            fails; the change stays queued and is retried either way.
        """
        item = _Pending(change, then, creates)
        with self._condition:
            self._pending.setdefault(recording_id, []).append(item)
            self._count += 1
            if recording_id not in self._scheduled:
                self._scheduled.add(recording_id)
                self._ready.append((time.monotonic() + self._group_commit_seconds, recording_id))
            self._start_thread()
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
            return [item.change for item in self._pending.get(recording_id, ())]

    def pending_count(self) -> int:
        with self._condition:
            return self._count

    def flush(self, timeout: float) -> bool:
        """Wait until every queued change is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                return self._wait_until_written(deadline)
            finally:
                self._flushing -= 1

    def _wait_until_written(self, deadline: float) -> bool:
        """(Holding the lock.) Wait until nothing is queued; False at ``deadline``."""
        while self._count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._condition.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued (up to ``timeout``), then stop the thread; False if some is left."""
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

    def _start_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="registry-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                recording_id = self._next_due()
                if recording_id is None:
                    return
                batch = list(self._pending[recording_id])
            self._write_batch(recording_id, batch)
            with self._condition:
                remaining = self._pending[recording_id][len(batch) :]
                self._count -= len(batch)
                if remaining:
                    self._pending[recording_id] = remaining
                    self._ready.append((time.monotonic(), recording_id))
                else:
                    del self._pending[recording_id]
                    self._scheduled.discard(recording_id)
                self._condition.notify_all()

    def _next_due(self) -> str | None:
        """The recording whose batch is due next (waiting until it is); None once closed."""
        while True:
            if not self._ready:
                if self._closed:
                    return None
                self._condition.wait()
                continue
            due, recording_id = self._ready[0]
            wait = due - time.monotonic()
            if wait > 0 and not self._closed and not self._flushing:
                self._condition.wait(wait)
                continue
            self._ready.popleft()
            return recording_id

    def _write_batch(self, recording_id: str, batch: list[_Pending]) -> None:
        """Write ``batch`` (retrying an outage), then run its follow-ups; never raises."""
        changes = [item.change for item in batch]

        def write() -> None:
            try:
                self._registry.apply_changes(
                    recording_id, changes, creates=any(item.creates for item in batch)
                )
            except Exception as error:
                _settle(batch, error)
                raise
            _settle(batch, None)

        if not self._attempt(write):
            LOGGER.error(
                "%s recording %s: %d change(s) not written after %d attempts",
                REGISTRY_WRITE_FAILED_MARKER,
                recording_id,
                len(batch),
                len(self._retry_delays) + 1,
            )
            return
        for item in batch:
            if item.then is not None and not self._attempt(item.then):
                LOGGER.error(
                    "%s recording %s: follow-up not written",
                    REGISTRY_WRITE_FAILED_MARKER,
                    recording_id,
                )

    def _attempt(self, write: Callable[[], None]) -> bool:
        """Run ``write`` until it succeeds, retrying only an outage; False when it never did."""
        for delay in (*self._retry_delays, None):
            try:
                write()
                return True
            except RegistryUnavailableError as error:
                if delay is None:
                    return False
                LOGGER.warning("registry write failed (%s); retrying in %.2f s", error, delay)
                time.sleep(delay)
            except Exception:
                LOGGER.exception("registry write failed and will not be retried")
                return False
        return False


def _settle(batch: list[_Pending], error: Exception | None) -> None:
    """Tell the waiters of ``batch`` the outcome of an attempt (the first outcome sticks)."""
    for item in batch:
        if item.written.done():
            continue
        if error is None:
            item.written.set_result(None)
        else:
            item.written.set_exception(error)
