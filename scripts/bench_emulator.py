"""Benchmark of the emulator: render time per format and download throughput over loopback.

Runs a real ``python -m emulator`` (manual clock), records an hour-long five-participant call in
each format, times stop -> event (rendering), downloads the largest object with the real SDK and
reports throughput and the emulator's peak RSS (VmHWM). Prints a Markdown table.

    python -m scripts.bench_emulator [--seconds 3600] [--formats wav-unmixed,wav,mp3,mp4]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from emulator.client import emulator_call_automation_client
from emulator.simulation import EmulatorSimulation
from local_runtime.processes import (
    emulator_process,
)

FORMATS = {
    "wav-unmixed": {
        "recording_content_type": "audio",
        "recording_channel_type": "unmixed",
        "recording_format_type": "wav",
    },
    "wav": {
        "recording_content_type": "audio",
        "recording_channel_type": "mixed",
        "recording_format_type": "wav",
    },
    "mp3": {
        "recording_content_type": "audio",
        "recording_channel_type": "mixed",
        "recording_format_type": "mp3",
    },
    "mp4": {
        "recording_content_type": "audioVideo",
        "recording_channel_type": "mixed",
        "recording_format_type": "mp4",
    },
}
PARTICIPANTS = [
    "8:acs:bench_a",
    "8:acs:bench_b",
    "4:+15550000003",
    "8:acs:bench_d",
    "8:acs:bench_e",
]
DOWNLOAD_BLOCK = 8 * 1024 * 1024


@dataclass
class Figure:
    name: str
    render_seconds: float
    size_bytes: int
    download_seconds: float | None = None


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def record_one(
    sim: EmulatorSimulation, client, seconds: float, options: dict
) -> tuple[float, dict]:
    call = sim.create_call(PARTICIPANTS)
    recording_id = client.start_recording(
        server_call_id=call["serverCallId"], **options
    ).recording_id
    sim.advance_clock(seconds)
    started = time.perf_counter()
    client.stop_recording(recording_id)
    event = sim.wait_for_event(recording_id, timeout=600)
    elapsed = time.perf_counter() - started
    sim.hangup(call["serverCallId"])
    return elapsed, event


def download_all(client, url: str) -> tuple[int, float]:
    """Range loop, as an archiver does it: the SDK has no resumable download of its own."""
    started = time.perf_counter()
    offset = 0
    while True:
        response = client.download_recording(url, offset=offset, length=DOWNLOAD_BLOCK)
        count = sum(len(block) for block in response.iter_bytes())
        offset += count
        if response.status_code == 200 or count < DOWNLOAD_BLOCK:
            break
    return offset, time.perf_counter() - started


def run(seconds: float, names: list[str], work_dir: Path) -> tuple[list[Figure], float]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    process, endpoint = emulator_process(
        work_dir,
        key,
        args=(
            "--clock",
            "manual",
            "--max-chunk-duration",
            f"{max(seconds, 1) + 1}s",
            "--log-level",
            "WARNING",
        ),
        log_path=work_dir / "emulator.log",
    )
    process.start()
    figures = []
    try:
        sim = EmulatorSimulation(endpoint, timeout=600)
        with emulator_call_automation_client(endpoint, key, retry_total=0) as client:
            for name in names:
                render_seconds, event = record_one(sim, client, seconds, FORMATS[name])
                chunk = event["data"]["recordingStorageInfo"]["recordingChunks"][0]
                size, download_seconds = download_all(client, chunk["contentLocation"])
                figures.append(Figure(name, render_seconds, size, download_seconds))
                client.delete_recording(chunk["deleteLocation"])
        assert process.process is not None
        rss = peak_rss_mib(process.process.pid)
    finally:
        process.stop()
    return figures, rss


def markdown(figures: list[Figure], rss: float, seconds: float) -> str:
    lines = [
        f"| format ({seconds / 3600:g} h, 5 participants) | render s | size MiB | download MiB/s |",
        "|---|---:|---:|---:|",
    ]
    for f in figures:
        rate = f.size_bytes / 2**20 / f.download_seconds if f.download_seconds else float("nan")
        lines.append(
            f"| {f.name} | {f.render_seconds:.1f} | {f.size_bytes / 2**20:.1f} | {rate:.0f} |"
        )
    lines.append("")
    lines.append(f"Emulator peak RSS (VmHWM) over the whole run: {rss:.0f} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_emulator", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3600.0, help="recorded duration")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats")
    args = parser.parse_args(argv)
    names = [name for name in args.formats.split(",") if name]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        parser.error(f"--formats: unknown {unknown}; choose from {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as work_dir:
        figures, rss = run(args.seconds, names, Path(work_dir))
    print(markdown(figures, rss, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
