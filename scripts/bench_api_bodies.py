"""Large request bodies against the API: its peak memory, and how long the answers take.

The scenario of a client (or an attacker) without the function key sending several large bodies
at once: the API must refuse them before reading them (401), so its memory stays where it was.
Then the same bodies with the key: refused by size (413), again before they are read. The API
runs as its own process (``make local``'s stack without the archive worker); its resident
memory is sampled every 20 ms.

    python -m scripts.bench_api_bodies [--clients 5] [--mb 19.5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from local_runtime.stack import LocalStack
from scripts.bench_archiver import RssSampler


def send_at_once(url: str, headers: dict[str, str], body: bytes, clients: int) -> list[str]:
    """POST ``body`` from ``clients`` threads at once; each answer's status (or the error)."""
    outcomes = [""] * clients
    barrier = threading.Barrier(clients)

    def send(number: int) -> None:
        barrier.wait()
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=120)
            outcomes[number] = str(response.status_code)
        except httpx.HTTPError as error:  # the API may close the connection after answering
            outcomes[number] = type(error).__name__
        return None

    threads = [threading.Thread(target=send, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def measure(stack: LocalStack, *, clients: int, size: int) -> list[tuple[str, str]]:
    assert stack.api is not None and stack.api.process is not None
    url = f"{stack.api_url}/api/recordings"
    body = b'{"serverCallId": "' + b"x" * (size - 21) + b'"}'
    rows: list[tuple[str, str]] = []
    for label, headers in (
        ("no key", {"Content-Type": "application/json"}),
        (
            "with the key",
            {"Content-Type": "application/json", "x-functions-key": stack.function_key},
        ),
    ):
        idle = RssSampler(stack.api.process.pid)
        time.sleep(0.5)
        before = idle.stop()
        sampler = RssSampler(stack.api.process.pid)
        began = time.monotonic()
        outcomes = send_at_once(url, headers, body, clients)
        elapsed = time.monotonic() - began
        peak = sampler.stop()
        rows.append(
            (
                f"{clients} x {size / 1e6:.1f} MB, {label}",
                f"{before:.0f} MB -> peak {peak:.0f} MB; answers {', '.join(outcomes)}; "
                f"{elapsed:.2f} s",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5, help="bodies sent at once")
    parser.add_argument("--mb", type=float, default=19.5, help="size of each body in MB")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.mb <= 0:
        parser.error("--clients must be >= 1 and --mb > 0")
    with tempfile.TemporaryDirectory(prefix="bench-api-bodies-") as root:
        stack = LocalStack(
            state_dir=Path(root),
            emulator_args=("--clock", "manual", "--log-level", "WARNING"),
            api_args=("--log-level", "warning"),
            with_archive_worker=False,
        ).start()
        try:
            rows = measure(stack, clients=args.clients, size=int(args.mb * 1e6))
        finally:
            stack.stop()
    print("| scenario | API resident memory, answers, time |\n|---|---|")
    for scenario, figures in rows:
        print(f"| {scenario} | {figures} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
