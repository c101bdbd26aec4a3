"""The local worker (``python -m scripts.archive_worker``) as a real process against Azurite.

It must behave like the Functions queue trigger: delete on success, retry after a failure, move
to ``-poison`` after ``maxDequeueCount`` attempts, and a worker killed mid-copy loses nothing:
the message comes back and another worker finishes with the blocks already staged.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_runtime.media_server import Fault, SyntheticMediaServer
from local_runtime.processes import ManagedProcess, python_module_argv
from recording_pipeline.archive import host_json
from recording_pipeline.archive.host_json import QueueHostOptions
from recording_pipeline.archive.layout import recording_prefix
from tests.functions.archive.conftest import (
    ArchiveStack,
    SyntheticRecording,
    md5_digest,
    publish_recording,
)

HOST_JSON = Path(__file__).resolve().parents[3] / "functions" / "host.json"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Workers:
    """Starts worker processes for one test and stops every one of them afterwards."""

    def __init__(self, stack: ArchiveStack, tmp_path: Path) -> None:
        self.stack = stack
        self.tmp_path = tmp_path
        self.started: list[ManagedProcess] = []

    def start(self, *extra: str, lease_seconds: int = 30) -> ManagedProcess:
        log_path = self.tmp_path / f"worker-{len(self.started)}.log"
        process = ManagedProcess(
            name="archive-worker",
            argv=python_module_argv(
                "scripts.archive_worker",
                "--lease-seconds",
                str(lease_seconds),
                "--visibility-timeout",
                "0.2",
                "--max-polling-interval",
                "0.2",
                *extra,
            ),
            env=self.stack.env,
            ready=lambda: log_path.exists() and "polling" in log_path.read_text(),
            log_path=log_path,
            startup_timeout=30,
        )
        self.started.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


@pytest.fixture
def workers(stack: ArchiveStack, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(stack, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def queue_is_empty(stack: ArchiveStack) -> bool:
    return stack.events_queue.get_queue_properties().approximate_message_count == 0


def manifest_name(recording: SyntheticRecording) -> str:
    prefix = recording_prefix(recording.call_id, recording.recording_id, recording.start_time)
    return f"{prefix}manifest.json"


def test_host_options_come_from_host_json() -> None:
    options = QueueHostOptions.from_host_json(HOST_JSON)
    host = json.loads(HOST_JSON.read_text())["extensions"]["queues"]
    assert host["messageEncoding"] == "none"
    assert options.max_dequeue_count == host["maxDequeueCount"] == 5
    assert options.visibility_timeout_seconds == 60
    assert options.batch_size == host["batchSize"]


def test_the_archiver_and_the_worker_read_the_deployed_host_json() -> None:
    """One reader for both: its default is the app's own host.json, so the archiver's last-attempt
    check and the worker's redelivery agree (a wrong path would fall back to defaults silently)."""
    assert host_json.HOST_JSON == HOST_JSON
    assert host_json.max_dequeue_count() == QueueHostOptions.from_host_json().max_dequeue_count


def test_worker_archives_queued_events_and_deletes_the_messages(
    stack: ArchiveStack, media_server: SyntheticMediaServer, workers: Workers
) -> None:
    recordings = [publish_recording(media_server, [300_000, 1000], seed=s) for s in range(3)]
    for number, recording in enumerate(recordings):
        stack.register(recording.event())
        # Event Grid wrote both encodings over time; the worker passes the text through as is.
        stack.events_queue.send_message(recording.message(base64_encoded=number % 2 == 0))
    worker = workers.start()

    wait_until(
        lambda: all(manifest_name(r) in stack.blob_names() for r in recordings), 60, "archives"
    )
    wait_until(lambda: queue_is_empty(stack), 30, "the queue to drain")
    for recording in recordings:
        entity = stack.recording_entity(recording.recording_id)
        assert entity is not None and entity["ArchiveStatus"] == "archived"
    assert stack.poison_envelopes() == []
    worker.stop()
    assert worker.process is not None and worker.process.returncode == 0
    assert "stopped after 3 messages" in worker.log_tail()


def test_failing_message_moves_to_poison_after_max_dequeue_count(
    stack: ArchiveStack, media_server: SyntheticMediaServer, workers: Workers
) -> None:
    recording = publish_recording(media_server, [1000])
    stack.register(recording.event())
    # 403 is not retried inside an attempt: every attempt fails at once.
    media_server.add_fault(recording.chunks[0].metadata_path, Fault(status=403, times=100))
    message = recording.message()
    stack.events_queue.send_message(message)
    workers.start()

    wait_until(lambda: stack.poison_queue.peek_messages(max_messages=5) != [], 60, "poison")
    assert queue_is_empty(stack)
    poisoned = stack.poison_queue.peek_messages(max_messages=5)
    assert [m.content for m in poisoned] == [message]
    attempts = media_server.get_requests(recording.chunks[0].metadata_path)
    assert len(attempts) == 5
    entity = stack.recording_entity(recording.recording_id)
    assert entity is not None
    assert entity["ArchiveStatus"] == "failed"
    assert "Forbidden" in entity["ArchiveError"]
    assert manifest_name(recording) not in stack.blob_names()


def test_worker_killed_mid_copy_resumes_with_the_staged_blocks(
    stack: ArchiveStack, media_server: SyntheticMediaServer, workers: Workers
) -> None:
    size = 40 * 256 * 1024 + 123
    recording = publish_recording(media_server, [size])
    stack.register(recording.event())
    content_path = recording.chunks[0].content_path
    media_server.piece_delay_seconds = 0.02
    stack.events_queue.send_message(recording.message())
    first = workers.start(lease_seconds=3)
    prefix = recording_prefix(recording.call_id, recording.recording_id, recording.start_time)
    content_blob = stack.container.get_blob_client(f"{prefix}chunk-0000.wav")

    def staged_blocks() -> int:
        try:
            return len(content_blob.get_block_list("uncommitted")[1])
        except Exception:
            return 0

    wait_until(lambda: staged_blocks() >= 8, 60, "blocks to be staged")
    first.kill()
    staged_before = staged_blocks()
    assert f"{prefix}chunk-0000.wav" not in stack.blob_names(), "a partial blob became visible"
    media_server.piece_delay_seconds = 0.0

    requests_before_second = len(media_server.get_requests(content_path))
    second = workers.start(lease_seconds=3)
    wait_until(lambda: manifest_name(recording) in stack.blob_names(), 60, "the archive")

    archived = stack.read_blob(f"{prefix}chunk-0000.wav")
    assert archived == recording.chunks[0].content
    properties = content_blob.get_blob_properties()
    assert bytes(properties.content_settings.content_md5) == md5_digest(archived)
    manifest = json.loads(stack.read_blob(manifest_name(recording)))
    assert base64.b64decode(manifest["chunks"][0]["contentMd5"]) == md5_digest(archived)
    # A Put Block in flight at the kill may still land after staged_before was counted.
    resumed = re.search(r"resuming at byte (\d+) after (\d+) staged blocks", second.log_tail(400))
    assert resumed is not None, second.log_tail(400)
    resumed_at, staged_at_resume = int(resumed.group(1)), int(resumed.group(2))
    assert staged_at_resume >= staged_before >= 8
    assert resumed_at == staged_at_resume * 256 * 1024
    second_reads = media_server.get_requests(content_path)[requests_before_second:]
    assert min(int(h.removeprefix("bytes=").split("-")[0]) for h in second_reads) == resumed_at
    wait_until(lambda: queue_is_empty(stack), 30, "the redelivered message to be deleted")


def test_messages_no_parser_can_read_are_poisoned_at_once_with_their_reason(
    stack: ArchiveStack, workers: Workers
) -> None:
    """A RecursionError or a ValueError from the JSON parser is bad input, not a transient
    failure: one attempt, an envelope with the reason, never five retries and a raw body."""
    bodies = {
        "nests too deeply": "[" * 30_000 + "]" * 30_000,
        "cannot be read": '{"id": ' + "7" * 5000 + "}",
    }
    for body in bodies.values():
        stack.events_queue.send_message(body)
    worker = workers.start()

    wait_until(lambda: len(stack.poison_queue.peek_messages(max_messages=5)) == 2, 30, "poison")
    wait_until(lambda: queue_is_empty(stack), 30, "the queue to drain")
    contents = [m.content for m in stack.poison_queue.peek_messages(max_messages=5)]
    envelopes = [json.loads(c) for c in contents if c.startswith('{"reason"')]
    assert len(envelopes) == 2, "the host moved raw bodies: the worker retried them"
    for reason, body in bodies.items():
        (envelope,) = [e for e in envelopes if e["body"] == body]
        assert reason in envelope["reason"]
        assert envelope["messageId"]
    assert "failed on attempt" not in worker.log_tail(400)
    assert [e["PartitionKey"] for e in stack.entities()] == ["poison", "poison"]
    assert stack.blob_names() == []
