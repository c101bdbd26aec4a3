"""The command line (options, bad configuration, logging) and the /emulator/ simulation API."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.client import emulator_call_automation_client
from emulator.simulation import EmulatorSimulation, SimulationError
from local_runtime.processes import ManagedProcess, free_port, http_answers, python_module_argv
from tests.emulator.helpers import download, record
from tests.emulator.media_checks import read_wav
from tests.support.emulator import RunningEmulator, random_access_key, start_emulator

OPTIONS = [
    "--host",
    "--port",
    "--access-key",
    "--data-dir",
    "--clock",
    "--max-chunk-duration",
    "--retention",
    "--event-queue-connection-string",
    "--event-queue-name",
    "--event-queue-encoding",
    "--event-webhook",
    "--event-delay",
    "--region-host",
    "--resource-id",
    "--immutable-resource-id",
    "--recording-id-suffix",
    "--fault-seed",
    "--faults",
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_documents_every_option() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for option in OPTIONS:
        assert option in result.stdout, option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region-host", "media.example.com"], "--region-host must end with"),
        (["--event-queue-name", "q"], "--event-queue-connection-string and --event-queue-name"),
        (["--max-chunk-duration", "0"], "--max-chunk-duration must be > 0"),
        (["--resource-id", "acs"], "--resource-id must be an ARM id"),
    ],
)
def test_bad_configuration_exits_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = _run("--access-key", random_access_key(), "--data-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_access_key_must_be_base64(tmp_path: Path) -> None:
    result = _run("--access-key", "not base64!", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "access key must be base64" in result.stderr


def test_log_has_one_line_per_request_and_no_secret(emulator: RunningEmulator) -> None:
    record(emulator, ["8:acs:a"], 1)
    log = (emulator.data_dir / "emulator.log").read_text()
    assert "POST /calling/recordings -> 200" in log
    assert "DELETE /calling/recordings/" in log
    assert emulator.access_key not in log
    assert "HMAC-SHA256" not in log


def test_wall_clock_cannot_be_advanced(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path, clock="wall")
    try:
        with pytest.raises(SimulationError) as raised:
            emulator.simulation.advance_clock(5)
    finally:
        emulator.stop()
    assert raised.value.status == 409


@pytest.mark.parametrize(
    ("participants", "field"),
    [
        (["alice"], "participants[0].rawId"),
        ([{"rawId": "8:acs:a", "toneHz": 20}], "participants[0].toneHz"),
        ([{"rawId": "8:acs:a", "toneHz": 440.5}], "participants[0].toneHz"),
        (
            [{"rawId": "8:acs:a", "toneHz": 500}, {"rawId": "8:acs:b", "toneHz": 500}],
            "participants[1].toneHz",
        ),
        (["8:acs:a", "8:acs:a"], "participants[1].rawId"),
    ],
)
def test_bad_participants_are_rejected_naming_the_field(
    emulator: RunningEmulator, participants: list, field: str
) -> None:
    with pytest.raises(SimulationError) as raised:
        emulator.simulation.create_call(participants)
    assert raised.value.status == 400
    assert f"'{field}'" in str(raised.value)


def test_join_leave_hangup_and_call_state(emulator: RunningEmulator) -> None:
    sim = emulator.simulation
    call = sim.create_call(["8:acs:a"])
    assert call["participants"] == [{"rawId": "8:acs:a", "toneHz": 440, "present": True}]
    sim.join(call["serverCallId"], "4:+15550001111")
    sim.leave(call["serverCallId"], "8:acs:a")
    state = sim.call(call["serverCallId"])
    assert [(p["rawId"], p["present"]) for p in state["participants"]] == [
        ("8:acs:a", False),
        ("4:+15550001111", True),
    ]
    with pytest.raises(SimulationError) as not_there:
        sim.leave(call["serverCallId"], "8:acs:a")
    assert sim.hangup(call["serverCallId"])["ended"] is True
    with pytest.raises(SimulationError) as ended:
        sim.join(call["serverCallId"], "8:acs:b")
    assert (not_there.value.status, ended.value.status) == (400, 404)


def test_reset_forgets_calls_recordings_and_objects(emulator: RunningEmulator) -> None:
    call, _, _ = record(emulator, ["8:acs:a"], 1)
    assert emulator.simulation.objects()["objects"]
    emulator.simulation.reset()
    assert emulator.simulation.objects() == {"objects": [], "recordings": []}
    assert emulator.simulation.events() == []
    with pytest.raises(SimulationError):
        emulator.simulation.call(call["serverCallId"])


def test_wall_clock_recording_and_event_delay(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path, clock="wall", extra_args=["--event-delay", "1s"])
    try:
        call = emulator.simulation.create_call(["8:acs:a"])
        with emulator.sdk_client() as client:
            recording_id = client.start_recording(
                server_call_id=call["serverCallId"],
                recording_content_type="audio",
                recording_format_type="wav",
            ).recording_id
            time.sleep(1.0)
            client.stop_recording(recording_id)
            stopped = time.monotonic()
            event = emulator.simulation.wait_for_event(recording_id)
            delivered = time.monotonic() - stopped
            chunk = event["data"]["recordingStorageInfo"]["recordingChunks"][0]
            audio = read_wav(download(client, chunk["contentLocation"]))
    finally:
        emulator.stop()
    assert delivered >= 1.0
    assert 0.95 <= audio.duration <= 1.6, audio.duration
    assert abs(event["data"]["recordingDurationMs"] - audio.duration * 1000) <= 1


def test_access_key_can_come_from_the_environment(tmp_path: Path) -> None:
    """Keeps the key out of ``ps``; the SDK signed with the same key is accepted."""
    key = random_access_key()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        name="emulator-env-key",
        argv=python_module_argv("emulator", "--port", str(port), "--data-dir", str(tmp_path)),
        ready=lambda: http_answers(f"{endpoint}/emulator/health"),
        env={"ACS_EMULATOR_ACCESS_KEY": key},
        log_path=tmp_path / "emulator.log",
    ).start()
    try:
        call = EmulatorSimulation(endpoint).create_call(["8:acs:a"])
        with emulator_call_automation_client(endpoint, key, retry_total=0) as client:
            started = client.start_recording(server_call_id=call["serverCallId"])
    finally:
        process.stop()
    assert started.recording_state == "active"
    assert key not in " ".join(process.argv)
