"""Which recordings a callback may touch: those this API started, or those ACS knows.

A callback token is valid for five minutes and is not bound to the body it came with, so a
captured token can be replayed with other events. The JWT proves ACS sent *a* callback; this
check makes sure the events are about a recording that exists: the registry has it (this API
started it, or the archiver archived it; this instance's unwritten changes count, so a callback
that overtakes its start's write is kept), or ACS's ``get_recording_properties`` finds it now (a
start recorded by another instance whose write has not landed yet). ACS's answer is remembered
for a short while, so a burst of callbacks for one recording asks ACS once.

An event that would end a recording (``StartRecordingFailed``: ``failed`` is final) is applied
only when ACS confirms it, as the API confirms a refusal: :meth:`KnownRecordings.live_at_acs`
asks ACS afresh (no cached answer), and a recording ACS reports active or inactive did not fail,
whatever a replayed token says.

A recording whose start named its own ``recordingStateCallbackUrl`` gets its callbacks there, so
a callback about it that arrives here is not recorded at all
(:meth:`KnownRecordings.sends_callbacks_elsewhere`); what a callback about any other recording
may write of the call's ids is ``registry.states.callback_call_ids``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from recording_pipeline.api.control import problem_for, registry_call_in_thread
from recording_pipeline.api.service import AcsError, AcsNotFoundError, RecordingService
from recording_pipeline.api.timing import measure
from recording_pipeline.recording_options import names_own_callback_url
from recording_pipeline.registry.writer import DeferredRegistryWrites

#: How long ACS's "it exists" is trusted; the recording cannot stop existing at ACS and come back.
KNOWN_SECONDS = 300.0
#: How long ACS's "no such recording" is trusted: short, a replayed token lives five minutes.
UNKNOWN_SECONDS = 30.0
#: ACS answers remembered at most (least recently used first out).
REMEMBERED_ANSWERS = 1024


class KnownRecordings:
    """:param writes: the registry (with this instance's unwritten changes).
    :param service: ACS, asked when the registry does not know a recording.
    """

    def __init__(self, writes: DeferredRegistryWrites, service: RecordingService) -> None:
        self._writes = writes
        self._service = service
        self._answers: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def contains(self, recording_id: str) -> bool:
        """Whether callbacks may be recorded for ``recording_id``.

        :raises ProblemError: 503 when the registry or ACS cannot be asked (ACS delivers again).
        """
        if await registry_call_in_thread(self._writes.get, recording_id) is not None:
            return True
        remembered = self._remembered(recording_id)
        if remembered is not None:
            return remembered
        try:
            with measure("acs"):
                await self._service.get(recording_id)
            known = True
        except AcsNotFoundError:
            known = False
        except AcsError as error:
            raise problem_for(error) from error
        self._remember(recording_id, known)
        return known

    async def sends_callbacks_elsewhere(self, recording_id: str) -> bool:
        """Whether the recording's start named its own callback URL: ACS posts its callbacks
        there, so one that arrives here carries a replayed token and is not recorded.

        :raises ProblemError: 503 when the registry cannot be asked (ACS delivers again).
        """
        entry = await registry_call_in_thread(self._writes.get, recording_id)
        return entry is not None and names_own_callback_url(entry.options)

    async def live_at_acs(self, recording_id: str) -> str | None:
        """ACS's live state of the recording now (``active``/``inactive``), None when ACS does
        not have it (404: it ended, or never started).

        :raises ProblemError: 503 when ACS cannot be asked (ACS delivers the callback again).
        """
        try:
            with measure("acs"):
                live = await self._service.get(recording_id)
        except AcsNotFoundError:
            return None
        except AcsError as error:
            raise problem_for(error) from error
        self._remember(recording_id, True)
        return live.state

    def _remembered(self, recording_id: str) -> bool | None:
        with self._lock:
            answer = self._answers.get(recording_id)
            if answer is None:
                return None
            known, until = answer
            if time.monotonic() >= until:
                del self._answers[recording_id]
                return None
            return known

    def _remember(self, recording_id: str, known: bool) -> None:
        lifetime = KNOWN_SECONDS if known else UNKNOWN_SECONDS
        with self._lock:
            self._answers[recording_id] = (known, time.monotonic() + lifetime)
            self._answers.move_to_end(recording_id)
            while len(self._answers) > REMEMBERED_ANSWERS:
                self._answers.popitem(last=False)
