"""API latency benchmark: start, pause, resume and stop through the API vs the SDK directly.

Both paths run in the same process against the same emulator, interleaved call by call, so the
difference between them is what the API adds: HTTP to the API, validation, the function-key
check and the registry reads in Azurite (its writes land just after each answer, see
``registry.writer``). The stack is ``make local``'s (``scripts.local_stack``) without the archive
worker, so the API runs as its own process and the benchmark client does not share its
interpreter. Prints a Markdown table; the target is an overhead of at most 5 ms at p50.

Operations are spaced by ``--think-ms`` (default 20 ms) on both paths, as a client's are: no
application pauses a recording a millisecond after starting it. With ``--think-ms 0`` they run
back to back, and the registry write one operation leaves behind lands during the next, on the
same two cores as the emulator and Azurite; that worst case is worth a run of its own.

The report names the server that was measured (uvicorn with httptools/uvloop when installed,
else h11/asyncio; ``--http``/``--loop`` choose). That part of the overhead is local only: in
Azure the Functions host serves HTTP.

    python -m scripts.bench_api [--iterations 200] [--warmup 20] [--think-ms 20]
                                [--http auto] [--loop auto]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from emulator.client import emulator_call_automation_client
from emulator.simulation import EmulatorSimulation
from local_runtime.api_server import server_description
from local_runtime.stack import LocalStack
from recording_pipeline.api import timing as server_timing

OPERATIONS = ("start", "pause", "resume", "stop")
#: Requests that touch neither ACS nor the registry: the cost of HTTP and the framework alone.
FLOOR_OPERATIONS = ("health", "rejected start")
TARGET_OVERHEAD_MS = 5.0
DEFAULT_THINK_MS = 20.0


def percentile(values: list[float], fraction: float) -> float:
    """The sample at ``fraction`` (0-1) of ``values`` in order (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def add_round_options(parser: argparse.ArgumentParser, rounds_of: str) -> None:
    """``--iterations``, ``--warmup`` and ``--think-ms``, as the API benchmarks take them."""
    parser.add_argument(
        "--iterations", type=int, default=200, help=f"measured rounds per {rounds_of}"
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured rounds first")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=DEFAULT_THINK_MS,
        help="pause before each operation, as a client's (0 = back to back)",
    )


def check_round_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage error (exit 2) for rounds that cannot run."""
    if args.iterations < 1 or args.warmup < 0 or args.think_ms < 0:
        parser.error("--iterations must be >= 1, --warmup and --think-ms >= 0")


@dataclass
class Samples:
    """Milliseconds per operation for one path (API or SDK)."""

    values: dict[str, list[float]] = field(
        default_factory=lambda: {op: [] for op in (*OPERATIONS, *FLOOR_OPERATIONS)}
    )
    #: Per operation, the API's own Server-Timing spans (``acs``, ``registry``) per request.
    spans: dict[str, list[dict[str, float]]] = field(
        default_factory=lambda: {operation: [] for operation in OPERATIONS}
    )
    #: Seconds a client waits before each operation (not measured).
    think_seconds: float = 0.0

    def timed(self, operation: str, action: Callable[[], object]) -> object:
        if self.think_seconds:
            time.sleep(self.think_seconds)
        began = time.perf_counter()
        result = action()
        self.values[operation].append((time.perf_counter() - began) * 1000)
        return result

    def percentile(self, operation: str, fraction: float) -> float:
        return percentile(self.values[operation], fraction)

    def median(self, operation: str) -> float:
        return statistics.median(self.values[operation])

    def p50_p95_cells(self, operation: str) -> str:
        """``p50 | p95`` of ``operation`` for a Markdown table row (ms, one decimal)."""
        return f"{self.median(operation):.1f} | {self.percentile(operation, 0.95):.1f}"

    def span_median(self, operation: str, name: str) -> float:
        return statistics.median(spans.get(name, 0.0) for spans in self.spans[operation])

    def timed_api(self, operation: str, action: Callable[[], httpx.Response]) -> httpx.Response:
        response = self.timed(operation, action)
        assert isinstance(response, httpx.Response)
        self.spans[operation].append(server_timing.parse(response.headers["server-timing"]))
        return response


def run(
    stack: LocalStack, *, iterations: int, warmup: int, think_ms: float = DEFAULT_THINK_MS
) -> tuple[Samples, Samples]:
    """Interleave API and SDK rounds; both ask the emulator to call back the API's route, so
    both paths carry the same callback load and differ only by what the API adds."""
    simulation = EmulatorSimulation(stack.emulator_url)
    callback_url = f"{stack.api_url}/api/callbacks"
    sdk = emulator_call_automation_client(stack.emulator_url, stack.access_key, retry_total=0)
    think = think_ms / 1000
    api_samples, sdk_samples = Samples(think_seconds=think), Samples(think_seconds=think)
    with httpx.Client(
        base_url=stack.api_url, headers={"x-functions-key": stack.function_key}, timeout=30
    ) as http:
        for index in range(warmup + iterations):
            measured = index >= warmup
            warm = Samples(think_seconds=think)
            api_round(http, simulation, api_samples if measured else warm)
            sdk_round(sdk, simulation, callback_url, sdk_samples if measured else warm)
    sdk.close()
    return api_samples, sdk_samples


def api_round(http: httpx.Client, simulation: EmulatorSimulation, samples: Samples) -> None:
    call = simulation.create_call(["8:acs:bench-a", "8:acs:bench-b"])
    body = {"serverCallId": call["serverCallId"], "content": "audio", "format": "wav"}
    started = samples.timed_api("start", lambda: _ok(http.post("/api/recordings", json=body)))
    location = f"/api/recordings/{quote(started.json()['recordingId'], safe='')}"
    samples.timed_api("pause", lambda: _ok(http.post(f"{location}/pause")))
    samples.timed_api("resume", lambda: _ok(http.post(f"{location}/resume")))
    samples.timed_api("stop", lambda: _ok(http.delete(location)))
    samples.timed("health", lambda: _ok(http.get("/api/health")))
    rejected = samples.timed("rejected start", lambda: http.post("/api/recordings", json={}))
    assert isinstance(rejected, httpx.Response) and rejected.status_code == 400


def sdk_round(
    sdk: object, simulation: EmulatorSimulation, callback_url: str, samples: Samples
) -> None:
    call = simulation.create_call(["8:acs:bench-a", "8:acs:bench-b"])
    properties = samples.timed(
        "start",
        lambda: sdk.start_recording(  # type: ignore[attr-defined]
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_channel_type="mixed",
            recording_format_type="wav",
            recording_state_callback_url=callback_url,
        ),
    )
    recording_id = properties.recording_id  # type: ignore[attr-defined]
    samples.timed("pause", lambda: sdk.pause_recording(recording_id))  # type: ignore[attr-defined]
    samples.timed("resume", lambda: sdk.resume_recording(recording_id))  # type: ignore[attr-defined]
    samples.timed("stop", lambda: sdk.stop_recording(recording_id))  # type: ignore[attr-defined]


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise RuntimeError(f"API answered {response.status_code}: {response.text}")
    return response


def markdown_table(api: Samples, sdk: Samples, iterations: int, server: str = "") -> str:
    load = os.getloadavg()[0]
    spacing = (
        f"operations {api.think_seconds * 1000:.0f} ms apart"
        if api.think_seconds
        else "operations back to back"
    )
    lines = [
        f"API vs SDK against the emulator, {iterations} rounds each, interleaved, {spacing} "
        f"(ms); {os.cpu_count()} CPUs, load average {load:.1f} at the end:",
        "",
        *(
            [
                f"API served locally by {server}; in Azure the Functions host serves HTTP "
                "instead, so the HTTP part of the overhead differs there.",
                "",
            ]
            if server
            else []
        ),
        "| operation | API p50 | API p95 | SDK p50 | SDK p95 | overhead p50 | target <= 5 ms "
        "| inside API: ACS p50 | inside API: registry p50 |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for operation in OPERATIONS:
        overhead = api.median(operation) - sdk.median(operation)
        lines.append(
            f"| {operation} | {api.p50_p95_cells(operation)} | {sdk.p50_p95_cells(operation)} "
            f"| {overhead:.1f} | {'met' if overhead <= TARGET_OVERHEAD_MS else 'missed'} "
            f"| {api.span_median(operation, 'acs'):.1f} "
            f"| {api.span_median(operation, 'registry'):.1f} |"
        )
    for operation in FLOOR_OPERATIONS:
        lines.append(
            f"| {operation} (no ACS, no registry) | {api.p50_p95_cells(operation)} | | | | | | |"
        )
    lines += [
        "",
        "overhead = API p50 - SDK p50; the last two columns are the API's own Server-Timing "
        "spans (time in the SDK call to ACS, time in registry reads in Azurite; the writes land "
        "after the answer).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_round_options(parser, "path")
    parser.add_argument(
        "--http", choices=("auto", "httptools", "h11"), default="auto", help="API's HTTP parser"
    )
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="API's event loop"
    )
    args = parser.parse_args(argv)
    check_round_options(parser, args)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as root:
        stack = LocalStack(
            state_dir=Path(root),
            emulator_args=("--clock", "manual", "--log-level", "WARNING"),
            api_args=("--log-level", "warning", "--http", args.http, "--loop", args.loop),
            with_archive_worker=False,
        ).start()
        try:
            api, sdk = run(
                stack, iterations=args.iterations, warmup=args.warmup, think_ms=args.think_ms
            )
        finally:
            stack.stop()
    print(markdown_table(api, sdk, args.iterations, server_description(args.http, args.loop)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
