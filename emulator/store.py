"""RecordingStore: every piece of mutable emulator state behind one object with ``reset()``.

No module-level dictionaries: tests and the ``/emulator/reset`` endpoint get a clean emulator by
resetting the store, and two emulators in one process never share state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from emulator.models import Call, MediaObject, Recording


class RecordingStore:
    """Calls by serverCallId, recordings by recordingId, media objects by documentId."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.calls: dict[str, Call] = {}
        self.recordings: dict[str, Recording] = {}
        self.objects: dict[str, MediaObject] = {}
        self.repeatability: dict[str, str] = {}

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    def reset(self) -> None:
        self.calls.clear()
        self.recordings.clear()
        self.objects.clear()
        self.repeatability.clear()
        if self.objects_dir.exists():
            shutil.rmtree(self.objects_dir)

    def add_call(self, call: Call) -> None:
        self.calls[call.server_call_id] = call

    def find_call(
        self,
        *,
        server_call_id: str = "",
        call_id: str = "",
        room_id: str = "",
        call_connection_id: str = "",
    ) -> Call | None:
        if server_call_id:
            return self.calls.get(server_call_id)
        for call in self.calls.values():
            if (
                (call_id and call.call_id == call_id)
                or (room_id and call.room_id == room_id)
                or (call_connection_id and call.call_connection_id == call_connection_id)
            ):
                return call
        return None

    def recordings_of(self, server_call_id: str) -> list[Recording]:
        return [r for r in self.recordings.values() if r.server_call_id == server_call_id]

    def add_recording(self, recording: Recording) -> None:
        self.recordings[recording.recording_id] = recording

    def add_object(self, media_object: MediaObject) -> None:
        self.objects[media_object.document_id] = media_object

    def object_dir(self, document_id: str) -> Path:
        return self.objects_dir / document_id
