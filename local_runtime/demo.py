"""The `make local` demo: one call recorded twice, archived, and every archived file checked.

A simulated call with three participants, each speaking its own tone. Through the API: an
unmixed WAV recording (participant order fixed) that is paused and resumed, then a mixed MP4
recording; then the call hangs up. The second recording's file-status event is dead-lettered on
purpose (an emulator fault rule), as Event Grid does with an event it cannot deliver: the demo
runs the reconciler, which puts it back on the queue, and the archiver takes it from there. The
demo waits for the archiver, reads the archive back from Blob Storage and checks each file
against what the scenario did: size and MD5 against the manifest, duration against the time
recorded (pauses excluded), each WAV channel's dominant frequency against its participant's
tone, the video's resolution, and that ACS no longer holds a copy. Then it prints the
CloudEvents the Event Grid custom topic (the emulator's) received, one ``RecordingArchived`` per
recording expected. It exits non-zero when anything does not match.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import time
import wave
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

import av
import httpx
import numpy as np
from azure.storage.blob import ContainerClient

from emulator.simulation import EmulatorSimulation
from recording_pipeline.clock import utc_now
from recording_pipeline.events_out.cloud_events import EventName
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import ReconcileReport
from recording_pipeline.reconcile.run import ReconcileClients, run
from recording_pipeline.settings import Settings

if TYPE_CHECKING:
    from local_runtime.stack import LocalStack

PARTICIPANTS = (
    ("8:acs:00000000-0000-4000-8000-00000000a11c_demo-alice", 440),
    ("8:acs:00000000-0000-4000-8000-0000000000b0_demo-bob", 660),
    ("4:+15550100123", 990),
)
TONE_TOLERANCE_HZ = 5.0
DURATION_TOLERANCE_S = 0.15


class DemoError(RuntimeError):
    """A step of the scenario failed; the message says which and why."""


@dataclass
class FileCheck:
    recording: str
    file: str
    size: int
    duration_s: float | None
    channels: str
    problems: list[str]
    #: How the archive got it: its event, or its dead-lettered event through the reconciler.
    route: str = "event"

    @property
    def verified(self) -> bool:
        return not self.problems


class RecordingApi:
    """The few API calls the demo makes, with the local function key."""

    def __init__(self, base_url: str, function_key: str) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers={"x-functions-key": function_key}, timeout=30
        )

    def start(self, body: dict[str, Any], idempotency_key: str) -> str:
        answer = self._call("POST", "/api/recordings", json=body, idem=idempotency_key)
        return str(answer["recordingId"])

    def pause(self, recording_id: str) -> None:
        self._call("POST", f"/api/recordings/{quote(recording_id, safe='')}/pause")

    def resume(self, recording_id: str) -> None:
        self._call("POST", f"/api/recordings/{quote(recording_id, safe='')}/resume")

    def stop(self, recording_id: str) -> None:
        self._call("DELETE", f"/api/recordings/{quote(recording_id, safe='')}")

    def get(self, recording_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/recordings/{quote(recording_id, safe='')}")

    def _call(
        self, method: str, path: str, *, json: Any = None, idem: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idem} if idem else {}
        response = self._http.request(method, path, json=json, headers=headers)
        if response.status_code >= 400:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
        result: dict[str, Any] = response.json()
        return result


def record_scenario(api: RecordingApi, sim: EmulatorSimulation) -> dict[str, dict[str, Any]]:
    """Drive the call; returns, per recording id, what the archive must then contain."""
    call = sim.create_call([{"rawId": raw, "toneHz": hz} for raw, hz in PARTICIPANTS])
    server_call_id = call["serverCallId"]
    order = [raw for raw, _ in PARTICIPANTS]
    step("call started", f"serverCallId {server_call_id[:24]}…, 3 participants")

    unmixed = api.start(
        {
            "serverCallId": server_call_id,
            "content": "audio",
            "channel": "unmixed",
            "format": "wav",
            "audioChannelParticipantOrdering": order,
        },
        idempotency_key="demo-unmixed",
    )
    step("recording 1 started", "unmixed WAV, channels in participant order")
    sim.advance_clock(4)
    api.pause(unmixed)
    step("recording 1 paused", "after 4 s")
    sim.advance_clock(2)
    api.resume(unmixed)
    step("recording 1 resumed", "2 s left out of the recording")
    sim.advance_clock(3)
    api.stop(unmixed)
    step("recording 1 stopped", "7 s recorded; ACS allows one recording of a call at a time")
    mixed = api.start(
        {
            "serverCallId": server_call_id,
            "content": "audioVideo",
            "channel": "mixed",
            "format": "mp4",
        },
        idempotency_key="demo-mixed",
    )
    step("recording 2 started", "mixed MP4 (1080p, 16 fps)")
    sim.set_faults([{"operation": "events", "kind": "deadletter", "recordingId": mixed}])
    sim.advance_clock(3)
    sim.hangup(server_call_id)
    step("call hung up", "ACS renders the files and publishes RecordingFileStatusUpdated")
    return {
        unmixed: {"label": "unmixed wav", "seconds": 4 + 3, "channel_tones": order},
        mixed: {
            "label": "mixed mp4",
            "seconds": 3,
            "channel_tones": None,
            "route": "dead letter → reconciler",
        },
    }


def recover_dead_letters(
    sim: EmulatorSimulation, stack: LocalStack, expected: dict[str, dict[str, Any]]
) -> ReconcileReport:
    """Wait until the dead-lettered events are in the dead-letter container, then run the
    reconciler once (the timer function's run) and show what it did."""
    for recording_id, scenario in expected.items():
        if "route" not in scenario:
            continue
        outcome, _ = sim.wait_for_event_outcome(recording_id)
        if outcome != "deadLettered":
            raise DemoError(f"the event of {scenario['label']} was {outcome}, not dead-lettered")
        step(f"{scenario['label']} event dead-lettered", "Event Grid gave up on it (fault rule)")
    settings = Settings.from_env(stack.function_env())
    clients = ReconcileClients.from_settings(settings)
    report = run(clients, ReconcilePolicy.from_settings(settings), now=utc_now())
    recovered = [item["recordingId"] for item in report.dead_letters.requeued]
    labels = ", ".join(expected[r]["label"] for r in recovered if r in expected) or "none"
    step("reconciler ran", f"{len(recovered)} dead-lettered event(s) back on the queue: {labels}")
    return report


def wait_for_archives(
    api: RecordingApi, recording_ids: list[str], timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    """Poll the API until every recording's archive status is final, showing progress."""
    deadline = time.monotonic() + timeout
    archives: dict[str, dict[str, Any]] = {}
    progress = Progress("waiting for the archiver")
    while time.monotonic() < deadline:
        for recording_id in recording_ids:
            archive = (api.get(recording_id).get("registry") or {}).get("archive") or {}
            if archive.get("status") in {"archived", "lost", "failed"}:
                archives[recording_id] = archive
        progress.show(f"{len(archives)}/{len(recording_ids)} done")
        if len(archives) == len(recording_ids):
            progress.end()
            return archives
        time.sleep(0.25)
    progress.end()
    raise DemoError(f"archival did not finish in {timeout:.0f}s ({len(archives)} done)")


class Progress:
    """A status that changes in place on a terminal, and one plain line per change elsewhere.

    ``\\r`` rewrites the line on a terminal; in a log file or a pipe it would glue every update
    into one long line, so there each new status gets a line of its own (repeats are dropped).
    """

    def __init__(self, label: str, out: TextIO | None = None) -> None:
        self.label = label
        self.out = out or sys.stdout
        self.in_place = self.out.isatty()
        self.last: str | None = None

    def show(self, status: str) -> None:
        if status == self.last:
            return
        self.last = status
        if self.in_place:
            print(f"\r  {self.label}: {status}", end="", file=self.out, flush=True)
        else:
            print(f"  {self.label}: {status}", file=self.out, flush=True)

    def end(self) -> None:
        if self.in_place and self.last is not None:
            print(file=self.out)


def check_recording(
    container: ContainerClient, recording_id: str, archive: dict[str, Any], expected: dict[str, Any]
) -> list[FileCheck]:
    label = expected["label"]
    if archive.get("status") != "archived":
        problem = f"archive status {archive.get('status')}: {archive.get('error')}"
        return [FileCheck(label, "-", 0, None, "-", [problem], expected.get("route", "event"))]
    manifest = json.loads(container.download_blob(archive["manifestBlob"]).readall())
    checks = [_check_chunk(container, chunk, manifest, expected) for chunk in manifest["chunks"]]
    total = sum(c.duration_s or 0.0 for c in checks)
    if abs(total - expected["seconds"]) > DURATION_TOLERANCE_S:
        checks[-1].problems.append(f"recorded {total:.2f}s in all, expected {expected['seconds']}s")
    return checks


def _check_chunk(
    container: ContainerClient, chunk: dict[str, Any], manifest: dict[str, Any], expected: dict
) -> FileCheck:
    data = container.download_blob(chunk["contentBlob"]).readall()
    problems = []
    if len(data) != chunk["contentBytes"]:
        problems.append(f"size {len(data)} != manifest {chunk['contentBytes']}")
    if base64.b64encode(hashlib.md5(data).digest()).decode() != chunk["contentMd5"]:  # noqa: S324
        problems.append("MD5 differs from the manifest")
    if manifest["formatType"] == "wav":
        duration, channels = _check_wav(data, manifest, expected["channel_tones"], problems)
    else:
        duration, channels = _check_mp4(data, problems)
    name = chunk["contentBlob"].rsplit("/", 1)[-1]
    route = expected.get("route", "event")
    return FileCheck(expected["label"], name, len(data), duration, channels, problems, route)


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


def _check_wav(
    data: bytes, manifest: dict[str, Any], order: list[str] | None, problems: list[str]
) -> tuple[float, str]:
    with wave.open(io.BytesIO(data)) as wav:
        rate, count, frames = wav.getframerate(), wav.getnchannels(), wav.getnframes()
        pcm = np.frombuffer(wav.readframes(frames), dtype="<i2").reshape(-1, count)
    if rate != 16000:
        problems.append(f"sample rate {rate}, expected 16000")
    tones = dict(PARTICIPANTS)
    by_channel = {c: p["participantId"] for p in manifest["participants"] for c in p["channels"]}
    labels = []
    for channel in range(count):
        participant = by_channel.get(channel, "?")
        heard = _dominant_hz(pcm[:, channel], rate)
        labels.append(f"{channel}→{participant.split('_')[-1][-12:]}")
        if participant not in tones or abs(heard - tones[participant]) > TONE_TOLERANCE_HZ:
            problems.append(f"channel {channel} carries {heard:.0f} Hz, not {participant}'s tone")
        if order and channel < len(order) and order[channel] != participant:
            problems.append(f"channel {channel} is {participant}, expected {order[channel]}")
    return frames / rate, ", ".join(labels)


def _check_mp4(data: bytes, problems: list[str]) -> tuple[float, str]:
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        if (video.width, video.height) != (1920, 1080):
            problems.append(f"video is {video.width}x{video.height}, expected 1920x1080")
        duration = float(container.duration or 0) / av.time_base
        audio = container.streams.audio[0]
        rate = audio.rate
        samples = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(audio)]
        )
    missing = [raw for raw, hz in PARTICIPANTS if not _carries_tone(samples, rate, hz)]
    if missing:
        problems.append(f"mixed audio lacks the tone of {', '.join(missing)}")
    return duration, "mixed (all participants)"


def _carries_tone(samples: np.ndarray, rate: int, tone_hz: float) -> bool:
    """A tone is present when its peak is within 20 dB of the strongest one."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    band = np.abs(freqs - tone_hz) <= TONE_TOLERANCE_HZ
    return bool(band.any() and spectrum[band].max() >= spectrum[1:].max() / 10)


def check_acs_copies_deleted(sim: EmulatorSimulation, recording_ids: list[str]) -> list[str]:
    """Every chunk ACS stored for these recordings must be deleted: the archiver's last step."""
    objects = [o for o in sim.objects()["objects"] if o["recordingId"] in recording_ids]
    problems = [
        f"ACS still holds {o['documentId']} ({o['status']})"
        for o in objects
        if o["status"] != "deleted"
    ]
    stored = {o["recordingId"] for o in objects}
    problems += [f"ACS never stored recording {r}" for r in recording_ids if r not in stored]
    return problems


def wait_for_topic_events(
    sim: EmulatorSimulation, recording_ids: list[str], timeout: float = 30.0
) -> tuple[list[dict[str, Any]], list[str]]:
    """The events the topic received, once each recording's ``RecordingArchived`` is among them
    (the archiver publishes it right after the registry says ``archived``); and what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        events = [entry["event"] for entry in sim.topic_events()]
        archived = {
            e["data"]["recordingId"]
            for e in events
            if e["type"] == EventName.ARCHIVED.type and isinstance(e.get("data"), dict)
        }
        missing = [r for r in recording_ids if r not in archived]
        if not missing or time.monotonic() >= deadline:
            return events, [f"no {EventName.ARCHIVED.value} event for {r}" for r in missing]
        time.sleep(0.25)


def print_events(events: list[dict[str, Any]]) -> None:
    """One line per CloudEvent: type, subject, id, and for an archive its files and bytes."""
    print(f"\n  Events received by the topic ({len(events)}):")
    for event in events:
        data = event.get("data") or {}
        detail = (
            f"{len(data.get('files') or [])} files, {data.get('totalBytes', 0):,} bytes"
            if event["type"] == EventName.ARCHIVED.type
            else str(data.get("reason") or "")
        )
        subject = _shorten(event["subject"], SUBJECT_WIDTH)
        print(f"  {event['type']}  {subject}  id {event['id']}  {detail}".rstrip())


#: Subjects hold the whole encoded recording id; the demo shows its start.
SUBJECT_WIDTH = 40


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(checks: list[FileCheck]) -> None:
    header = ("recording", "archived via", "file", "size", "duration", "channel → participant")
    header = (*header, "verified")
    rows = [
        (
            c.recording,
            c.route,
            c.file,
            f"{c.size:,}",
            f"{c.duration_s:.2f}s" if c.duration_s is not None else "-",
            c.channels,
            "✓" if c.verified else "✗ " + "; ".join(c.problems),
        )
        for c in checks
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(
            ("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))).rstrip()
        )


def step(what: str, detail: str = "") -> None:
    print(f"  • {what}" + (f": {detail}" if detail else ""), flush=True)


def run_demo(*, api_url: str, function_key: str, stack: LocalStack) -> int:
    """Run the scenario against a started stack; 0 when every check passed."""
    started = time.monotonic()
    api = RecordingApi(api_url, function_key)
    sim = EmulatorSimulation(stack.emulator_url)
    container = ContainerClient.from_connection_string(
        stack.function_env()["ARCHIVE_STORAGE_CONNECTION_STRING"], "recordings"
    )
    try:
        expected = record_scenario(api, sim)
        recover_dead_letters(sim, stack, expected)
        archives = wait_for_archives(api, list(expected))
        checks = [
            check
            for recording_id, archive in archives.items()
            for check in check_recording(container, recording_id, archive, expected[recording_id])
        ]
    except DemoError as error:
        print(f"\nDemo failed: {error}", file=sys.stderr)
        return 1
    leftovers = check_acs_copies_deleted(sim, list(expected))
    print()
    print_table(checks)
    if stack.publish_events:
        events, missing = wait_for_topic_events(sim, list(expected))
        print_events(events)
        leftovers += missing
    for problem in leftovers:
        print(f"  ✗ {problem}")
    ok = all(c.verified for c in checks) and not leftovers
    verdict = "every file verified" if ok else "MISMATCH"
    print(f"\n{verdict} in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1
