"""Benchmark of the archiver: throughput, peak memory and queue drain time (``make bench``).

Everything runs on this machine, in separate processes so each is measured alone:

- a synthetic ACS media server (``scripts.synthetic_media_server``) serving seeded bodies of any
  size generated on the fly, reached through the same media-host override as the local stack;
- Azurite for blobs, queue and table;
- the measured copier: the archive worker (``scripts.archive_worker``, the real path: queue,
  validation, Range reads, MD5, staged blocks, conditional commit, manifest, registry), a raw
  streaming copy (plain ranged GETs into Put Block with the same block size and the same
  download/upload overlap, no checks) as the baseline, the same raw copy with the per-block
  Content-MD5 header (Azurite stages blocks much faster with it; shown for information), and the
  public samples' approach (whole file read into memory, then uploaded).

The three copiers run ``--repeat`` times in rotated order and the fastest run of each counts
(other work on a shared machine only ever slows a run down); peak RSS is the highest seen,
sampled every 20 ms with psutil. Then 50 recordings are enqueued at once and the time until every
manifest exists is measured, checking that none was archived twice.

    python -m scripts.bench archiver
    python -m scripts.bench_archiver --sizes-mib 100,1024 --recordings 50
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from azure.storage.blob import BlobBlock, ContainerClient
from azure.storage.queue import QueueClient

from local_runtime.media_server import MediaObject
from local_runtime.processes import (
    Azurite,
    ManagedProcess,
    free_port,
    port_is_open,
    python_module_argv,
)
from recording_pipeline.clients import (
    call_automation_client,
    recordings_container_client,
    registry_table_client,
)
from recording_pipeline.registry import schema
from recording_pipeline.settings import Settings

MIB = 1024 * 1024
MEDIA_HOST = "bench.asm.skype.com"
#: Every benchmark recording is of this call: the archiver checks each chunk's metadata against it.
CALL_ID = "bench-call"
SERVER_CALL_ID = "c2VydmVy"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-0000000000be/resourceGroups/bench"
    "/providers/Microsoft.Communication/communicationServices/acs-bench"
)
ACCESS_KEY = base64.b64encode(b"bench-access-key-0123456789abcdef").decode()
THROUGHPUT_RATIO_TARGET = 0.7
COMPARED = ("baseline", "baseline-md5", "worker")
RSS_LIMIT_MB = 150


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mb: float

    def throughput(self, size: int) -> float:
        return size / MIB / self.seconds


class RssSampler:
    """Peak resident memory of one process (and its children) while it runs."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self._process, *self._process.children(recursive=True)]
                total = sum(p.memory_info().rss for p in processes)
            except psutil.Error:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self._interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak_bytes / 1e6


@dataclass
class BenchStack:
    azurite: Azurite
    media_url: str
    work_dir: Path

    def env(self, *, delete: bool, block_size: int) -> dict[str, str]:
        suffix = uuid.uuid4().hex[:10]
        return {
            "ACS_ENDPOINT": self.media_url,
            "ACS_ACCESS_KEY": ACCESS_KEY,
            "ACS_RESOURCE_ID": RESOURCE_ID,
            "ACS_IMMUTABLE_RESOURCE_ID": "bench",
            "ACS_MEDIA_ENDPOINT_OVERRIDE": self.media_url,
            "ARCHIVE_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
            "RecordingQueue": self.azurite.connection_string,
            "RECORDINGS_CONTAINER": f"bench{suffix}",
            "EVENTS_QUEUE": f"bench-events-{suffix}",
            "REGISTRY_TABLE": f"bench{suffix}",
            "DELETE_FROM_ACS_AFTER_ARCHIVE": str(delete).lower(),
            "ARCHIVE_BLOCK_SIZE_BYTES": str(block_size),
        }


def content_path(name: str) -> str:
    return f"/v1/objects/{name}/content/audio"


def metadata_path(name: str) -> str:
    return f"/v1/objects/{name}/content/acsmetadata"


def metadata_text(name: str) -> str:
    """ACS-shaped metadata of the chunk stored as ``name`` (``drain3c1-1003`` is chunk 1)."""
    index = int(name.split("c", 1)[1].split("-")[0]) if name.startswith("drain") else 0
    return json.dumps(
        {
            "callId": CALL_ID,
            "chunkDocumentId": name,
            "chunkIndex": index,
            "chunkStartTime": "2026-01-01T00:00:00+00:00",
            "chunkDuration": 1000,
            "recordingInfo": {"contentType": "audio", "channelType": "unmixed", "format": "wav"},
            "participants": [{"participantId": f"8:acs:bench-{p}", "channel": p} for p in range(5)],
        }
    )


def media_objects(names_and_sizes: list[tuple[str, int]]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for index, (name, size) in enumerate(names_and_sizes):
        objects.append({"path": content_path(name), "size": size, "seed": index})
        objects.append({"path": metadata_path(name), "text": metadata_text(name)})
    return objects


def event_message(recording_id: str, chunk_names: list[str]) -> str:
    event = {
        "id": str(uuid.uuid4()),
        "topic": RESOURCE_ID,
        "subject": (
            f"/recording/call/{CALL_ID}/serverCallId/{SERVER_CALL_ID}/recordingId/{recording_id}"
        ),
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated",
        "data": {
            "recordingStorageInfo": {
                "recordingChunks": [
                    {
                        "documentId": name,
                        "index": index,
                        "endReason": "SessionEnded",
                        "contentLocation": f"https://{MEDIA_HOST}{content_path(name)}",
                        "metadataLocation": f"https://{MEDIA_HOST}{metadata_path(name)}",
                        "deleteLocation": f"https://{MEDIA_HOST}/v1/objects/{name}",
                    }
                    for index, name in enumerate(chunk_names)
                ]
            },
            "recordingStartTime": "2026-01-01T00:00:00Z",
            "recordingDurationMs": 1000,
            "recordingFormatType": "wav",
        },
    }
    return base64.b64encode(json.dumps(event).encode()).decode()


def register(settings: Settings, recording_id: str) -> None:
    """The registry row the API's start and a signed callback leave, so the archiver binds the
    benchmark's events to their recordings (the worker has created the table)."""
    registry_table_client(settings).upsert_entity(
        {
            **schema.recording_keys(recording_id),
            schema.RECORDING_ID: recording_id,
            schema.SERVER_CALL_ID: SERVER_CALL_ID,
            schema.CORRELATION_ID: CALL_ID,
        }
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def start_worker(env: dict[str, str], log_path: Path) -> ManagedProcess:
    return ManagedProcess(
        name="archive-worker",
        argv=python_module_argv("scripts.archive_worker", "--max-polling-interval", "0.05"),
        env=env,
        ready=lambda: log_path.exists() and "polling" in log_path.read_text(),
        log_path=log_path,
    ).start()


def manifest_count(container: ContainerClient) -> int:
    return sum(1 for blob in container.list_blobs() if blob.name.endswith("/manifest.json"))


def run_worker_copy(stack: BenchStack, name: str, size: int, block_size: int) -> Measurement:
    """Time from enqueue to manifest for one single-chunk recording, worker RSS throughout."""
    env = stack.env(delete=False, block_size=block_size)
    settings = Settings.from_env(env)
    worker = start_worker(env, stack.work_dir / f"worker-{name}-{uuid.uuid4().hex[:8]}.log")
    sampler = RssSampler(worker.process.pid if worker.process else 0)
    try:
        container = recordings_container_client(settings)
        events = QueueClient.from_connection_string(env["RecordingQueue"], settings.events_queue)
        recording_id = f"bench{uuid.uuid4().hex}"
        register(settings, recording_id)
        started = time.monotonic()
        events.send_message(event_message(recording_id, [name]))
        wait_for(lambda: manifest_count(container) == 1, 1800, f"the archive of {name}")
        elapsed = time.monotonic() - started
    finally:
        peak = sampler.stop()
        worker.stop()
    content = next(b for b in container.list_blobs() if b.name.endswith(".wav"))
    stored_md5 = bytes(content.content_settings.content_md5 or b"")
    if stored_md5 != MediaObject(size=size, seed=_seed_of(name)).md5():
        raise RuntimeError(f"archived {name} does not match its source")
    return Measurement(elapsed, peak)


def _seed_of(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def run_copy_process(stack: BenchStack, mode: str, name: str, block_size: int) -> Measurement:
    env = stack.env(delete=False, block_size=block_size)
    recordings_container_client(Settings.from_env(env)).create_container()
    process = subprocess.Popen(
        python_module_argv("scripts.bench_archiver", "--copy-mode", mode, "--object-name", name),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(process.pid)
    output, _ = process.communicate(timeout=3600)
    peak = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{mode} copy of {name} failed with code {process.returncode}")
    return Measurement(json.loads(output)["seconds"], peak)


def raw_streaming_copy(settings: Settings, name: str, *, block_md5: bool = False) -> None:
    """The baseline: ranged GETs into Put Block, overlapping like the archiver, no checks.

    ``block_md5`` adds the per-block Content-MD5 header: Azurite stages blocks about 2.5 times
    faster with it (it then skips hashing on its side), so the fairer baseline has it too.
    """
    client = call_automation_client(settings, retry_total=0, connection_data_block_size=256 * 1024)
    blob = recordings_container_client(settings).get_blob_client(f"{name}.raw")
    url = f"https://{MEDIA_HOST}{content_path(name)}"
    block_size = settings.archive_block_size_bytes
    ids: list[str] = []
    offset, total = 0, None
    with ThreadPoolExecutor(1) as stager:
        pending: Future[Any] | None = None
        while total is None or offset < total:
            response: Any = client.download_recording(
                url, headers={"Range": f"bytes={offset}-{offset + block_size - 1}"}
            )
            total = int(response.headers["Content-Range"].rsplit("/", 1)[1])
            data = response.read()
            ids.append(f"{offset:016d}")
            if pending is not None:
                pending.result()
            pending = stager.submit(blob.stage_block, ids[-1], data, validate_content=block_md5)
            offset += len(data)
        if pending is not None:
            pending.result()
    blob.commit_block_list([BlobBlock(block_id=identifier) for identifier in ids])


def whole_file_copy(settings: Settings, name: str) -> None:
    """The public samples' approach: the whole recording in memory, then one upload."""
    client = call_automation_client(settings)
    response: Any = client.download_recording(f"https://{MEDIA_HOST}{content_path(name)}")
    data = response.read()
    recordings_container_client(settings).upload_blob(f"{name}.whole", data, overwrite=True)


def run_drain(stack: BenchStack, recordings: int, chunk_sizes: list[int]) -> dict[str, Any]:
    env = stack.env(delete=True, block_size=256 * 1024)
    settings = Settings.from_env(env)
    log_path = stack.work_dir / "worker-drain.log"
    worker = start_worker(env, log_path)
    try:
        container = recordings_container_client(settings)
        events = QueueClient.from_connection_string(env["RecordingQueue"], settings.events_queue)
        messages = [
            event_message(
                f"drain{number}",
                [f"drain{number}c{index}-{1000 + number}" for index in range(len(chunk_sizes))],
            )
            for number in range(recordings)
        ]
        for number in range(recordings):
            register(settings, f"drain{number}")
        started = time.monotonic()
        for message in messages:
            events.send_message(message)
        wait_for(lambda: manifest_count(container) == recordings, 1800, "the drain")
        wait_for(
            lambda: events.get_queue_properties().approximate_message_count == 0, 60, "empty queue"
        )
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    log = log_path.read_text()
    return {
        "seconds": elapsed,
        "archived": log.count("done: archived"),
        "twice": log.count("done: already-archived"),
        "manifests": manifest_count(container),
    }


def drain_objects(recordings: int, chunk_sizes: list[int]) -> list[tuple[str, int]]:
    return [
        (f"drain{number}c{index}-{1000 + number}", size)
        for number in range(recordings)
        for index, size in enumerate(chunk_sizes)
    ]


def start_media_server(objects: list[dict[str, Any]], work_dir: Path) -> tuple[ManagedProcess, str]:
    objects_file = work_dir / "objects.json"
    objects_file.write_text(json.dumps(objects))
    port = free_port()
    server = ManagedProcess(
        name="synthetic-media",
        argv=python_module_argv(
            "scripts.synthetic_media_server",
            "--port",
            str(port),
            "--objects-json",
            str(objects_file),
        ),
        ready=lambda: port_is_open("127.0.0.1", port),
        log_path=work_dir / "media.log",
    ).start()
    return server, f"http://127.0.0.1:{port}"


def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    sizes = [int(value) * MIB for value in args.sizes_mib.split(",")]
    block_size = args.block_size_mib * MIB
    names = [(f"size{size // MIB}m-{index}", size) for index, size in enumerate(sizes)]
    drain_sizes = [MIB, 256 * 1024]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-archiver-") as tmp:
        work_dir = Path(tmp)
        azurite = Azurite(location=work_dir / "azurite").start()
        media, media_url = start_media_server(
            media_objects(names + drain_objects(args.recordings, drain_sizes)), work_dir
        )
        try:
            stack = BenchStack(azurite, media_url, work_dir)
            measured = {}
            for name, size in names:
                runs: dict[str, list[Measurement]] = {mode: [] for mode in COMPARED}
                for repeat in range(args.repeat):
                    # Rotate the order so no variant always runs on a warmer or colder Azurite.
                    order = COMPARED[repeat % 3 :] + COMPARED[: repeat % 3]
                    for mode in order:
                        if mode == "worker":
                            runs[mode].append(run_worker_copy(stack, name, size, block_size))
                        else:
                            runs[mode].append(run_copy_process(stack, mode, name, block_size))
                measured[size] = {mode: best_of(found) for mode, found in runs.items()}
                measured[size]["whole-file"] = run_copy_process(
                    stack, "whole-file", name, block_size
                )
            rows += _copy_rows(measured)
            drain = run_drain(stack, args.recordings, drain_sizes)
            rows += _drain_rows(drain, args.recordings, drain_sizes)
        finally:
            media.stop()
            azurite.stop()
    return rows


def best_of(runs: list[Measurement]) -> Measurement:
    """Fastest run's time, highest peak memory: the machine is shared, memory is not noise."""
    return Measurement(min(r.seconds for r in runs), max(r.peak_rss_mb for r in runs))


def _copy_rows(measured: dict[int, dict[str, Measurement]]) -> list[tuple[str, str]]:
    rows = []
    largest = max(measured)
    for size, runs in measured.items():
        label = f"{size // MIB} MiB chunk"
        worker, plain, with_md5 = runs["worker"], runs["baseline"], runs["baseline-md5"]
        ratio = worker.throughput(size) / plain.throughput(size)
        # The target is for the 1 GiB chunk against the plain raw copy; on small chunks the
        # per-recording fixed costs (queue, registry, manifest) weigh more.
        verdict = "ok" if ratio >= THROUGHPUT_RATIO_TARGET else "BELOW TARGET"
        if size != largest:
            verdict = "informative"
        rows += [
            (f"{label}: raw streaming copy (baseline)", f"{plain.throughput(size):.1f} MiB/s"),
            (
                f"{label}: raw streaming copy + block MD5 header",
                f"{with_md5.throughput(size):.1f} MiB/s",
            ),
            (f"{label}: archive worker", f"{worker.throughput(size):.1f} MiB/s"),
            (
                f"{label}: throughput ratio worker / baseline",
                f"{ratio:.2f} ({verdict}, target >= 0.7)",
            ),
            (
                f"{label}: throughput ratio worker / raw copy + block MD5 header",
                f"{worker.throughput(size) / with_md5.throughput(size):.2f} (informative)",
            ),
            (f"{label}: peak RSS archive worker", f"{worker.peak_rss_mb:.0f} MB"),
            (f"{label}: peak RSS raw streaming copy", f"{plain.peak_rss_mb:.0f} MB"),
            (
                f"{label}: peak RSS whole file in memory",
                f"{runs['whole-file'].peak_rss_mb:.0f} MB",
            ),
        ]
    worker_peaks = [runs["worker"].peak_rss_mb for runs in measured.values()]
    verdict = "ok" if max(worker_peaks) <= RSS_LIMIT_MB else "ABOVE LIMIT"
    rows.append(
        (
            "archive worker peak RSS, smallest vs largest chunk",
            f"{worker_peaks[0]:.0f} MB vs {worker_peaks[-1]:.0f} MB ({verdict}, limit 150 MB)",
        )
    )
    return rows


def _drain_rows(drain: dict[str, Any], recordings: int, chunk_sizes: list[int]) -> list:
    shape = " + ".join(f"{size // 1024} KiB" for size in chunk_sizes)
    ok = drain["archived"] == drain["manifests"] == recordings and drain["twice"] == 0
    return [
        (
            f"{recordings} recordings ({shape} chunks) enqueued at once: time to drain",
            f"{drain['seconds']:.1f} s",
        ),
        (
            "archived / archived twice",
            f"{drain['archived']} / {drain['twice']} ({'ok' if ok else 'MISMATCH'})",
        ),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench_archiver", description="Benchmark the archiver."
    )
    parser.add_argument("--sizes-mib", default="100,1024", help="chunk sizes to copy (MiB)")
    parser.add_argument("--block-size-mib", type=int, default=8)
    parser.add_argument("--recordings", type=int, default=50, help="recordings in the drain test")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rotated runs of baselines and worker; best time"
    )
    parser.add_argument(
        "--copy-mode", choices=("baseline", "baseline-md5", "whole-file"), help=argparse.SUPPRESS
    )
    parser.add_argument("--object-name", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.copy_mode:
        settings = Settings.from_env()
        started = time.monotonic()
        if args.copy_mode == "whole-file":
            whole_file_copy(settings, args.object_name)
        else:
            raw_streaming_copy(
                settings, args.object_name, block_md5=args.copy_mode == "baseline-md5"
            )
        print(json.dumps({"seconds": time.monotonic() - started}))
        return 0
    rows = run(args)
    print("| measure | value |")
    print("|---|---|")
    for measure, value in rows:
        print(f"| {measure} | {value} |")
    failed = any("BELOW" in value or "ABOVE" in value or "MISMATCH" in value for _, value in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
