"""Fault injection, each kind observed by a real client."""

from __future__ import annotations

import json
import re
import time

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from tests.emulator.helpers import download, record
from tests.support.emulator import RunningEmulator, start_emulator


def _recording(emulator: RunningEmulator) -> str:
    call = emulator.simulation.create_call(["8:acs:a"])
    with emulator.sdk_client() as client:
        return client.start_recording(server_call_id=call["serverCallId"]).recording_id


def test_injected_5xx_is_seen_and_retried_away(emulator: RunningEmulator) -> None:
    recording_id = _recording(emulator)
    emulator.simulation.set_faults(
        [{"operation": "get_recording_properties", "kind": "error", "status": 503, "times": 1}]
    )
    with emulator.sdk_client() as client, pytest.raises(HttpResponseError) as raised:
        client.get_recording_properties(recording_id)
    assert raised.value.status_code == 503
    emulator.simulation.set_faults(
        [{"operation": "get_recording_properties", "kind": "error", "status": 500, "times": 2}]
    )
    with emulator.sdk_client(retry_total=3, retry_backoff_factor=0.01) as client:
        assert client.get_recording_properties(recording_id).recording_state == "active"
    (rule,) = emulator.simulation.faults()["rules"]
    assert rule["fired"] == 2


def test_throttle_answers_429_with_retry_after(emulator: RunningEmulator) -> None:
    emulator.simulation.set_faults(
        [{"operation": "start_recording", "kind": "throttle", "retryAfter": 7, "times": 1}]
    )
    call = emulator.simulation.create_call(["8:acs:a"])
    with emulator.sdk_client() as client, pytest.raises(HttpResponseError) as raised:
        client.start_recording(server_call_id=call["serverCallId"])
    assert raised.value.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.error.code == "TooManyRequests"


def test_dropped_download_is_cut_and_a_range_resume_completes(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 2, recording_content_type="audio", recording_format_type="wav"
    )
    url = event["data"]["recordingStorageInfo"]["recordingChunks"][0]["contentLocation"]
    with emulator.sdk_client() as client:
        whole = download(client, url)
        emulator.simulation.set_faults(
            [{"operation": "download_recording", "kind": "drop", "afterBytes": 10_000, "times": 1}]
        )
        received = b""
        response = client.download_recording(url)
        with pytest.raises((IncompleteReadError, ServiceResponseError, ServiceRequestError)):
            for block in response.iter_bytes():
                received += block
        assert 0 < len(received) <= 10_000
        rest = download(client, url, offset=len(received))
    assert received + rest == whole


def test_slow_bandwidth_paces_the_download(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 2, recording_content_type="audio", recording_format_type="wav"
    )
    url = event["data"]["recordingStorageInfo"]["recordingChunks"][0]["contentLocation"]
    with emulator.sdk_client() as client:
        started = time.monotonic()
        fast = download(client, url)
        fast_seconds = time.monotonic() - started
        emulator.simulation.set_faults(
            [{"operation": "download_recording", "kind": "slow", "bytesPerSecond": 100_000}]
        )
        started = time.monotonic()
        slow = download(client, url)
        slow_seconds = time.monotonic() - started
    assert slow == fast
    assert len(slow) / slow_seconds < 120_000, slow_seconds
    assert slow_seconds > 0.5 > fast_seconds


def test_duplicate_events_are_delivered_twice(emulator: RunningEmulator) -> None:
    emulator.simulation.set_faults([{"operation": "events", "kind": "duplicate", "times": 1}])
    _, _, event = record(emulator, ["8:acs:a"], 1)
    for _ in range(100):
        if len(emulator.simulation.events()) == 2:
            break
        time.sleep(0.05)
    first, second = emulator.simulation.events()
    assert first == second == event


def test_delayed_events_arrive_later(emulator: RunningEmulator) -> None:
    emulator.simulation.set_faults(
        [{"operation": "events", "kind": "delay", "delaySeconds": 1.5, "times": 1}]
    )
    started = time.monotonic()
    record(emulator, ["8:acs:a"], 1)
    assert time.monotonic() - started >= 1.5


def _outcomes(emulator: RunningEmulator, recording_id: str, seed: int) -> list[int]:
    emulator.simulation.set_faults(
        [{"operation": "get_recording_properties", "kind": "error", "probability": 0.5}], seed=seed
    )
    codes = []
    with emulator.sdk_client() as client:
        for _ in range(16):
            try:
                client.get_recording_properties(recording_id)
                codes.append(200)
            except HttpResponseError as error:
                codes.append(error.status_code)
    return codes


def test_faults_are_deterministic_by_seed(emulator: RunningEmulator) -> None:
    recording_id = _recording(emulator)
    first = _outcomes(emulator, recording_id, seed=7)
    again = _outcomes(emulator, recording_id, seed=7)
    other = _outcomes(emulator, recording_id, seed=8)
    assert first == again
    assert first != other
    assert 200 in first and 503 in first


def test_bad_fault_rule_names_the_field(emulator: RunningEmulator) -> None:
    from emulator.simulation import SimulationError

    with pytest.raises(SimulationError) as raised:
        emulator.simulation.set_faults([{"operation": "download_recording", "kind": "explode"}])
    assert raised.value.status == 400
    assert "'rules[0].kind'" in str(raised.value)


def test_faults_given_on_the_command_line_apply_from_the_start(tmp_path) -> None:
    rules = '[{"operation": "*", "kind": "error", "status": 502, "times": 1}]'
    running = start_emulator(tmp_path, extra_args=["--faults", rules, "--fault-seed", "3"])
    try:
        call = running.simulation.create_call(["8:acs:a"])
        with running.sdk_client() as client:
            with pytest.raises(HttpResponseError) as raised:
                client.start_recording(server_call_id=call["serverCallId"])
            started = client.start_recording(server_call_id=call["serverCallId"])
        faults = running.simulation.faults()
    finally:
        running.stop()
    assert raised.value.status_code == 502
    assert started.recording_state == "active"
    assert faults["seed"] == 3


def _stopped_recording(emulator: RunningEmulator) -> str:
    """A recording of a one-participant call, stopped; its event is then rendered and handled."""
    recording_id = _start(emulator)
    _stop(emulator, recording_id)
    return recording_id


def _start(emulator: RunningEmulator) -> str:
    """An audio recording of a new one-participant call, started."""
    call = emulator.simulation.create_call(["8:acs:a"])
    with emulator.sdk_client() as client:
        return client.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_format_type="wav",
        ).recording_id


def _stop(emulator: RunningEmulator, recording_id: str) -> None:
    emulator.simulation.advance_clock(1)
    with emulator.sdk_client() as client:
        client.stop_recording(recording_id)


def test_a_dropped_event_is_never_delivered_and_only_the_named_recording_loses_it(
    emulator: RunningEmulator,
) -> None:
    doomed, spared = _start(emulator), _start(emulator)
    emulator.simulation.set_faults([{"operation": "events", "kind": "drop", "recordingId": doomed}])
    _stop(emulator, doomed)
    _stop(emulator, spared)

    assert emulator.simulation.wait_for_event_outcome(doomed)[0] == "dropped"
    assert emulator.simulation.wait_for_event_outcome(spared)[0] == "published"
    published = [e["subject"] for e in emulator.simulation.events()]
    assert not any(subject.endswith(doomed) for subject in published)
    (dropped,) = emulator.simulation.dropped()
    assert dropped["subject"].endswith(f"/recordingId/{doomed}")
    assert emulator.simulation.faults()["rules"][0]["fired"] == 1


def test_a_dead_lettered_event_is_written_as_event_grid_writes_it(
    emulator_with_queue: RunningEmulator,
) -> None:
    emulator = emulator_with_queue
    emulator.simulation.set_faults([{"operation": "events", "kind": "deadletter", "times": 1}])
    recording_id = _stopped_recording(emulator)

    outcome, event = emulator.simulation.wait_for_event_outcome(recording_id)

    assert outcome == "deadLettered"
    (record_,) = emulator.simulation.dead_lettered()
    assert emulator.event_queue_connection_string is not None
    container = ContainerClient.from_connection_string(
        emulator.event_queue_connection_string, "event-deadletter"
    )
    (blob,) = list(container.list_blobs())
    assert blob.name == record_["blob"]
    # {TOPIC}/{SUBSCRIPTION}/{year}/{month}/{day}/{hour}/{guid}.json, upper-cased names, no padding
    topic = emulator.resource_id.rsplit("/", 1)[-1].upper()
    assert re.fullmatch(
        rf"{re.escape(topic)}/RECORDING-FILE-STATUS/\d{{4}}/([1-9]|1[0-2])/([1-9]|[12]\d|3[01])"
        r"/(\d|1\d|2[0-3])/[0-9a-f-]{36}\.json",
        blob.name,
    ), blob.name
    (written,) = json.loads(container.download_blob(blob.name).readall())
    assert {k: written[k] for k in event} == event
    assert written["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert written["deliveryAttempts"] == 30
    assert written["lastDeliveryOutcome"] == "TimedOut"
    assert written["publishTime"] == event["eventTime"]
    assert "lastDeliveryAttemptTime" in written
    assert emulator.event_queue_name is not None
    queue = QueueClient.from_connection_string(
        emulator.event_queue_connection_string, emulator.event_queue_name
    )
    assert queue.peek_messages() == []


def test_event_faults_by_probability_repeat_with_the_seed(emulator: RunningEmulator) -> None:
    def pattern(seed: int) -> list[str]:
        emulator.simulation.reset()
        emulator.simulation.set_faults(
            [{"operation": "events", "kind": "drop", "probability": 0.5}], seed=seed
        )
        outcomes = []
        for _ in range(8):
            recording_id = _stopped_recording(emulator)
            outcomes.append(emulator.simulation.wait_for_event_outcome(recording_id)[0])
        return outcomes

    first, again = pattern(11), pattern(11)
    assert first == again
    assert set(first) == {"published", "dropped"}


def test_a_media_fault_can_name_the_recording_whose_downloads_fail(
    emulator: RunningEmulator,
) -> None:
    failing, working = _stopped_recording(emulator), _stopped_recording(emulator)
    emulator.simulation.set_faults(
        [
            {
                "operation": "download_recording",
                "kind": "error",
                "status": 503,
                "recordingId": failing,
            }
        ]
    )
    urls = {}
    for recording_id in (failing, working):
        event = emulator.simulation.wait_for_event(recording_id)
        urls[recording_id] = event["data"]["recordingStorageInfo"]["recordingChunks"][0][
            "contentLocation"
        ]
    with emulator.sdk_client() as client:
        assert download(client, urls[working])
        with pytest.raises(HttpResponseError) as raised:
            download(client, urls[failing])
    assert raised.value.status_code == 503


@pytest.mark.parametrize("value", ["", 7])
def test_a_fault_rule_naming_a_recording_needs_a_non_empty_id(
    emulator: RunningEmulator, value: object
) -> None:
    from emulator.simulation import SimulationError

    with pytest.raises(SimulationError) as raised:
        emulator.simulation.set_faults(
            [{"operation": "events", "kind": "drop", "recordingId": value}]
        )
    assert raised.value.status == 400
    assert "'rules[0].recordingId'" in str(raised.value)
