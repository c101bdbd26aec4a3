"""CallRecordingProvider: the Call Recording operations, named as the SDK names them.

Methods take parsed values and return dicts with wire field names; they only raise
``errors.ServiceError`` subclasses and never build HTTP responses.

State rules (ACS documents none of these; the emulator answers consistently):

- an unknown recording id -> 404 ``RecordingNotFound``;
- pause on a paused recording and resume on an active one succeed and change nothing;
- a stopped recording (stop, or the call hung up) is gone: get/pause/resume/stop -> 404;
- start on an unknown or hung-up call -> 404 ``CallNotFound``;
- start while the call already has a recording that is not stopped -> 409 ``Conflict``;
- start repeated with the same ``Repeatability-Request-ID`` returns the first answer.

LIMITATIONS: ``externalStorage`` (bring your own storage) answers 501.
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.clock import Clock
from emulator.constants import RECORDING_KIND, SESSION_END_STOPPED
from emulator.errors import (
    CallNotFound,
    ObjectNotFound,
    RecordingAlreadyInProgress,
    RecordingNotFound,
)
from emulator.ids import IdFactory
from emulator.models import Call, MediaObject, Recording
from emulator.store import RecordingStore
from emulator.validation import CallTarget, parse_start_request

RecordingHook = Callable[[Recording], None]

CONTENT_KINDS = ("audio", "video", "acsmetadata")


class CallRecordingProvider:
    def __init__(
        self,
        store: RecordingStore,
        clock: Clock,
        ids: IdFactory,
        *,
        on_state_changed: RecordingHook,
        on_stopped: RecordingHook,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._on_state_changed = on_state_changed
        self._on_stopped = on_stopped

    # -- recording operations -------------------------------------------------------------

    def start_recording(self, body: object, repeatability_request_id: str = "") -> dict:
        if repeatability_request_id in self.store.repeatability:
            return self._properties(
                self.store.recordings[self.store.repeatability[repeatability_request_id]]
            )
        target, options = parse_start_request(body)
        call = self._require_call(target)
        busy = [r for r in self.store.recordings_of(call.server_call_id) if not r.stopped]
        if busy:
            raise RecordingAlreadyInProgress(
                f"Call '{call.server_call_id}' is already being recorded by recording "
                f"'{busy[0].recording_id}'; stop it before starting another."
            )
        now = self.clock.now()
        recording = Recording(
            recording_id=self.ids.recording_id(),
            server_call_id=call.server_call_id,
            options=options,
            started_at=now,
        )
        if options.pause_on_start:
            recording.pauses.append([now, None])
        else:
            recording.active_spans.append([now, None])
        self.store.add_recording(recording)
        if repeatability_request_id:
            self.store.repeatability[repeatability_request_id] = recording.recording_id
        self._on_state_changed(recording)
        return self._properties(recording)

    def get_recording_properties(self, recording_id: str) -> dict:
        return self._properties(self._require_live_recording(recording_id))

    def pause_recording(self, recording_id: str) -> None:
        recording = self._require_live_recording(recording_id)
        if recording.state == "inactive":
            return
        now = self.clock.now()
        recording.active_spans[-1][1] = now
        recording.pauses.append([now, None])
        self._on_state_changed(recording)

    def resume_recording(self, recording_id: str) -> None:
        recording = self._require_live_recording(recording_id)
        if recording.state == "active":
            return
        now = self.clock.now()
        recording.pauses[-1][1] = now
        recording.active_spans.append([now, None])
        self._on_state_changed(recording)

    def stop_recording(self, recording_id: str, *, reason: str = SESSION_END_STOPPED) -> None:
        recording = self._require_live_recording(recording_id)
        now = self.clock.now()
        for spans in (recording.active_spans, recording.pauses):
            if spans and spans[-1][1] is None:
                spans[-1][1] = now
        recording.stopped_at = now
        recording.session_end_reason = reason
        recording.render_status = "rendering"
        self._on_state_changed(recording)
        self._on_stopped(recording)

    # -- media objects ----------------------------------------------------------------------

    def get_media_object(self, document_id: str, content_kind: str | None) -> MediaObject:
        """The stored chunk, or 404 when unknown, deleted or past retention."""
        media_object = self.store.objects.get(document_id)
        if content_kind is not None and content_kind not in CONTENT_KINDS:
            raise ObjectNotFound(f"Unknown content kind '{content_kind}'.")
        if media_object is None or media_object.status(self.clock.now()) != "stored":
            raise ObjectNotFound(f"Recording object '{document_id}' was not found.")
        return media_object

    def delete_recording(self, document_id: str) -> None:
        media_object = self.get_media_object(document_id, None)
        media_object.deleted_at = self.clock.now()
        for path in (media_object.content_path, media_object.metadata_path):
            path.unlink(missing_ok=True)

    def expire_objects(self) -> None:
        """Drop the files of objects past retention (their answers are already 404)."""
        now = self.clock.now()
        for media_object in self.store.objects.values():
            if media_object.status(now) == "expired":
                media_object.content_path.unlink(missing_ok=True)
                media_object.metadata_path.unlink(missing_ok=True)

    # -- helpers -----------------------------------------------------------------------------

    def _require_call(self, target: CallTarget) -> Call:
        call = self.store.find_call(
            server_call_id=target.server_call_id,
            call_id=target.group_call_id,
            room_id=target.room_id,
            call_connection_id=target.call_connection_id,
        )
        shown = (
            target.server_call_id
            or target.group_call_id
            or target.room_id
            or target.call_connection_id
        )
        if call is None:
            raise CallNotFound(f"Call '{shown}' was not found.")
        if call.ended:
            raise CallNotFound(f"Call '{shown}' has ended.")
        return call

    def _require_live_recording(self, recording_id: str) -> Recording:
        recording = self.store.recordings.get(recording_id)
        if recording is None:
            raise RecordingNotFound(f"Recording '{recording_id}' was not found.")
        if recording.stopped:
            raise RecordingNotFound(f"Recording '{recording_id}' has been stopped.")
        return recording

    @staticmethod
    def _properties(recording: Recording) -> dict:
        return {
            "recordingId": recording.recording_id,
            "recordingState": recording.state,
            "recordingKind": RECORDING_KIND,
        }
