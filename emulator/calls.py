"""CallSimulator: the calls that recordings are made of, driven through ``/emulator/``.

ACS has no API to create a call from a server with scripted participants; the emulator needs
one so a test can say who talks when. Each participant gets its own tone (``toneHz`` or the next
free default) and its own video tile, which is what makes the rendered media checkable.
"""

from __future__ import annotations

import re

from emulator.clock import Clock
from emulator.constants import DEFAULT_TONES_HZ, MAX_TONE_HZ, MIN_TONE_HZ, SESSION_END_CALL_ENDED
from emulator.errors import CallNotFound, InvalidField
from emulator.ids import IdFactory
from emulator.models import Call, Participant
from emulator.provider import CallRecordingProvider
from emulator.store import RecordingStore

# ACS raw ids: "8:acs:<resource>_<user>", "4:+15551234567", "8:orgid:<guid>", "28:orgid:<guid>".
RAW_ID_PATTERN = re.compile(r"^\d{1,2}:\S+$")


class CallSimulator:
    def __init__(
        self, store: RecordingStore, clock: Clock, ids: IdFactory, provider: CallRecordingProvider
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.provider = provider

    def create_call(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise InvalidField("body", "must be a JSON object")
        participants = body.get("participants", [])
        if not isinstance(participants, list):
            raise InvalidField("participants", "must be a list", participants)
        group_call_id = _optional_str(body, "groupCallId")
        room_id = _optional_str(body, "roomId")
        call = Call(
            server_call_id=self.ids.server_call_id(),
            call_id=group_call_id or self.ids.guid(),
            call_connection_id=self.ids.guid(),
            room_id=room_id,
            started_at=self.clock.now(),
        )
        for index, item in enumerate(participants):
            self._add_participant(call, item, f"participants[{index}]")
        self.store.add_call(call)
        return self.describe(call)

    def join(self, server_call_id: str, body: object) -> dict:
        call = self._require_active_call(server_call_id)
        self._add_participant(call, body, "participant")
        return self.describe(call)

    def leave(self, server_call_id: str, participant_id: str) -> dict:
        call = self._require_active_call(server_call_id)
        participant = call.participants.get(participant_id)
        if participant is None or not participant.present:
            raise InvalidField("participantId", "is not in the call", participant_id)
        participant.presence[-1][1] = self.clock.now()
        return self.describe(call)

    def hangup(self, server_call_id: str) -> dict:
        call = self._require_active_call(server_call_id)
        for recording in self.store.recordings_of(server_call_id):
            if not recording.stopped:
                self.provider.stop_recording(recording.recording_id, reason=SESSION_END_CALL_ENDED)
        now = self.clock.now()
        for participant in call.participants.values():
            if participant.present:
                participant.presence[-1][1] = now
        call.ended_at = now
        return self.describe(call)

    def describe(self, call: Call) -> dict:
        return {
            "serverCallId": call.server_call_id,
            "callId": call.call_id,
            "callConnectionId": call.call_connection_id,
            "roomId": call.room_id,
            "ended": call.ended,
            "participants": [
                {"rawId": p.raw_id, "toneHz": p.tone_hz, "present": p.present}
                for p in call.participants.values()
            ],
        }

    def _require_active_call(self, server_call_id: str) -> Call:
        call = self.store.calls.get(server_call_id)
        if call is None:
            raise CallNotFound(f"Call '{server_call_id}' was not found.")
        if call.ended:
            raise CallNotFound(f"Call '{server_call_id}' has ended.")
        return call

    def _add_participant(self, call: Call, item: object, field: str) -> None:
        if isinstance(item, str):
            item = {"rawId": item}
        if not isinstance(item, dict):
            raise InvalidField(field, "must be a raw id string or an object with 'rawId'", item)
        raw_id = item.get("rawId")
        if not isinstance(raw_id, str) or not RAW_ID_PATTERN.match(raw_id):
            raise InvalidField(
                f"{field}.rawId", "must be an ACS raw id such as '8:acs:...' or '4:+1...'", raw_id
            )
        existing = call.participants.get(raw_id)
        now = self.clock.now()
        if existing is not None:
            if existing.present:
                raise InvalidField(f"{field}.rawId", "is already in the call", raw_id)
            existing.presence.append([now, None])
            return
        tone = self._tone_for(call, item.get("toneHz"), f"{field}.toneHz")
        participant = Participant(raw_id=raw_id, tone_hz=tone, tile_index=len(call.participants))
        participant.presence.append([now, None])
        call.participants[raw_id] = participant

    @staticmethod
    def _tone_for(call: Call, requested: object, field: str) -> int:
        used = {p.tone_hz for p in call.participants.values()}
        if requested is None:
            free = [hz for hz in DEFAULT_TONES_HZ if hz not in used]
            if not free:
                raise InvalidField(field, "is required once the default tones are used up")
            return free[0]
        if not isinstance(requested, int) or isinstance(requested, bool):
            raise InvalidField(field, "must be a whole number of hertz", requested)
        if not MIN_TONE_HZ <= requested <= MAX_TONE_HZ:
            raise InvalidField(field, f"must be between {MIN_TONE_HZ} and {MAX_TONE_HZ}", requested)
        if requested in used:
            raise InvalidField(field, "must differ from the other participants' tones", requested)
        return requested


def _optional_str(body: dict, field: str) -> str | None:
    value = body.get(field)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidField(field, "must be a non-empty string", value)
    return value
