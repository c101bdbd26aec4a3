"""EmulatorSimulation: a small synchronous client for the emulator's ``/emulator/`` API.

Tests, the demo and scripts use it to create calls, move participants, hang up, advance the
manual clock, inspect stored objects and published events, and configure faults. It uses only
the standard library so it works in any process without an event loop.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote


class SimulationError(RuntimeError):
    """The emulator refused a simulation request; carries the status and the ACS-style body."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else body
        super().__init__(f"emulator answered {status}: {message}")
        self.status = status
        self.body = body


Participant = str | dict[str, Any]


class EmulatorSimulation:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def create_call(
        self,
        participants: Sequence[Participant],
        *,
        group_call_id: str | None = None,
        room_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a call; participants are raw ids or ``{"rawId": ..., "toneHz": ...}``.

        :returns: ``{"serverCallId", "callId", "callConnectionId", ...}``
        """
        body: dict[str, Any] = {"participants": list(participants)}
        if group_call_id:
            body["groupCallId"] = group_call_id
        if room_id:
            body["roomId"] = room_id
        return self._request("POST", "/emulator/calls", body)

    def call(self, server_call_id: str) -> dict[str, Any]:
        return self._request("GET", f"/emulator/calls/{quote(server_call_id, safe='')}")

    def join(self, server_call_id: str, participant: Participant) -> dict[str, Any]:
        path = f"/emulator/calls/{quote(server_call_id, safe='')}:join"
        return self._request("POST", path, {"participant": participant})

    def leave(self, server_call_id: str, participant_id: str) -> dict[str, Any]:
        path = f"/emulator/calls/{quote(server_call_id, safe='')}:leave"
        return self._request("POST", path, {"participantId": participant_id})

    def hangup(self, server_call_id: str) -> dict[str, Any]:
        return self._request("POST", f"/emulator/calls/{quote(server_call_id, safe='')}:hangup")

    def advance_clock(self, seconds: float) -> float:
        return self._request("POST", "/emulator/clock:advance", {"seconds": seconds})["now"]

    def now(self) -> float:
        return self._request("GET", "/emulator/clock")["now"]

    def objects(self) -> dict[str, Any]:
        """``{"objects": [...], "recordings": [...]}``: what is stored, deleted, expired."""
        return self._request("GET", "/emulator/objects")

    def events(self) -> list[dict[str, Any]]:
        """Every RecordingFileStatusUpdated event published so far (duplicates included)."""
        return self._request("GET", "/emulator/events")["events"]

    def dead_lettered(self) -> list[dict[str, Any]]:
        """``{"event", "blob"}`` for each event a fault rule dead-lettered (blob name or None)."""
        return self._request("GET", "/emulator/events")["deadLettered"]

    def dropped(self) -> list[dict[str, Any]]:
        """Every event a fault rule dropped (never delivered anywhere)."""
        return self._request("GET", "/emulator/events")["dropped"]

    def topic_events(self) -> list[dict[str, Any]]:
        """``{"event", "receivedAt"}`` for each CloudEvent the Event Grid topic accepted."""
        return self._request("GET", "/emulator/topic-events")["events"]

    def callbacks(self) -> list[dict[str, Any]]:
        return self._request("GET", "/emulator/events")["callbacks"]

    def set_faults(self, rules: list[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
        return self._request("PUT", "/emulator/faults", {"seed": seed, "rules": rules})

    def faults(self) -> dict[str, Any]:
        return self._request("GET", "/emulator/faults")

    def reset(self) -> None:
        self._request("POST", "/emulator/reset")

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/emulator/health")

    def wait_for_event(self, recording_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The file-status event of a recording, once rendering and delivery are done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["subject"].endswith(f"/recordingId/{recording_id}"):
                    return event
            status = self._render_status(recording_id)
            if status == "failed":
                raise SimulationError(500, f"rendering of {recording_id} failed")
            time.sleep(0.05)
        raise TimeoutError(f"no RecordingFileStatusUpdated event for {recording_id} in {timeout}s")

    def wait_for_event_outcome(
        self, recording_id: str, timeout: float = 60.0
    ) -> tuple[str, dict[str, Any]]:
        """``(outcome, event)`` of a recording's file-status event once its fate is known:
        ``published``, ``deadLettered`` or ``dropped``."""
        deadline = time.monotonic() + timeout
        suffix = f"/recordingId/{recording_id}"
        while time.monotonic() < deadline:
            report = self._request("GET", "/emulator/events")
            candidates = [
                *(("published", e) for e in report["events"]),
                *(("deadLettered", item["event"]) for item in report["deadLettered"]),
                *(("dropped", e) for e in report["dropped"]),
            ]
            for outcome, event in candidates:
                if event["subject"].endswith(suffix):
                    return outcome, event
            if self._render_status(recording_id) == "failed":
                raise SimulationError(500, f"rendering of {recording_id} failed")
            time.sleep(0.05)
        raise TimeoutError(f"no RecordingFileStatusUpdated event for {recording_id} in {timeout}s")

    def _render_status(self, recording_id: str) -> str | None:
        for recording in self.objects()["recordings"]:
            if recording["recordingId"] == recording_id:
                return recording["renderStatus"]
        return None

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the emulator's own base URL
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise SimulationError(exc.code, parsed) from None
        return json.loads(raw) if raw else None
