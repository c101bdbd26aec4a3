"""API authentication benchmark: the same requests with an Entra ID bearer token and with the
function key, in the same run.

One local stack (``make up API_AUTH=entraId``'s: Azurite, the emulator, the local token issuer)
serves two API processes side by side: the stack's own, which requires a bearer token, and a
second with ``API_AUTH`` ``functionKey``. Rounds alternate between them, so both see the same
emulator, Azurite, load and clock, and the difference at p50 is what checking the token costs
against checking the key. The token is signed once and reused, as a client reuses it until it
expires: after the first request the tenant's keys are cached, so each request pays the header
checks, an RS256 signature verification and the claim rules, not a key fetch.

Locally the app checks the key itself; in Azure the Functions host does, before the app runs,
so there the key's cost moves out of the app and the token's stays in it. ``health`` is
anonymous in both modes and shows how close the two processes are without any check;
``rejected start`` (an empty body, refused with 400 after the check) touches neither ACS nor
the registry: it is the check and the framework alone.

    python -m scripts.bench_api_auth [--iterations 200] [--warmup 20] [--think-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from emulator.simulation import EmulatorSimulation
from local_runtime.stack import LocalStack
from recording_pipeline.api.bearer import BearerTokenVerifier
from recording_pipeline.settings import Settings
from scripts.bench_api import (
    FLOOR_OPERATIONS,
    OPERATIONS,
    Samples,
    add_round_options,
    api_round,
    check_round_options,
    percentile,
)

#: The checked request and the control: everything but health passes the key or token check.
MEASURED = (*OPERATIONS, *FLOOR_OPERATIONS)
#: In-process token checks timed after the HTTP rounds.
TOKEN_CHECKS = 2000


@contextlib.contextmanager
def two_apis() -> Iterator[tuple[LocalStack, str]]:
    """The stack with its token-checking API, and the URL of a function-key API beside it (in a
    temporary directory, removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bench-api-auth-") as root:
        yield from _two_apis_in(Path(root))


def _two_apis_in(state_dir: Path) -> Iterator[tuple[LocalStack, str]]:
    stack = LocalStack(
        state_dir=state_dir,
        emulator_args=("--clock", "manual", "--log-level", "WARNING"),
        api_args=("--log-level", "warning"),
        with_archive_worker=False,
        reconcile_every_seconds=0,
        api_auth="entraId",
    ).start()
    try:
        token_settings = stack.api_auth_env()
        key_env = {k: v for k, v in stack.function_env().items() if k not in token_settings}
        key_api, key_port = stack.start_api_process("api-function-key", key_env)
        try:
            yield stack, f"http://127.0.0.1:{key_port}"
        finally:
            key_api.stop()
    finally:
        stack.stop()


def token_check_microseconds(stack: LocalStack, token: str, checks: int) -> list[float]:
    """The app's own check of ``token`` against cached keys (``bearer.py``, built from the
    token API's settings as the app builds it), without HTTP: what each request pays for it,
    free of the machine's HTTP and scheduling noise."""
    verifier = BearerTokenVerifier.from_settings(Settings.from_env(stack.function_env()))
    verifier.verify(token)  # fetches the metadata and keys once, as the first request does
    times = []
    for _ in range(checks):
        began = time.perf_counter()
        claims = verifier.verify_cached(token)
        times.append((time.perf_counter() - began) * 1e6)
        if claims is None:
            raise RuntimeError("the keys left the cache during the benchmark")
    return times


def run(
    stack: LocalStack, key_api_url: str, *, iterations: int, warmup: int, think_ms: float
) -> tuple[Samples, Samples]:
    """Alternate a function-key round and a bearer-token round; the token API is the stack's."""
    assert stack.token_issuer is not None
    simulation = EmulatorSimulation(stack.emulator_url)
    think = think_ms / 1000
    key_samples, token_samples = Samples(think_seconds=think), Samples(think_seconds=think)
    token = stack.token_issuer.mint()
    with (
        httpx.Client(
            base_url=key_api_url, headers={"x-functions-key": stack.function_key}, timeout=30
        ) as with_key,
        httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as with_token,
    ):
        for index in range(warmup + iterations):
            measured = index >= warmup
            warm = Samples(think_seconds=think)
            api_round(with_key, simulation, key_samples if measured else warm)
            api_round(with_token, simulation, token_samples if measured else warm)
    return key_samples, token_samples


def markdown_table(
    key: Samples, token: Samples, iterations: int, checks_us: list[float] | None = None
) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"Function key vs Entra ID bearer token, {iterations} rounds each, interleaved, "
        f"operations {key.think_seconds * 1000:.0f} ms apart (ms); {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the end:",
        "",
        "| operation | key p50 | key p95 | token p50 | token p95 | token - key p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for operation in MEASURED:
        difference = token.median(operation) - key.median(operation)
        lines.append(
            f"| {operation} | {key.p50_p95_cells(operation)} | {token.p50_p95_cells(operation)} "
            f"| {difference:+.1f} |"
        )
    lines += [
        "",
        "health is anonymous in both modes (the control); rejected start is refused with 400 "
        "after the check, before ACS and the registry.",
    ]
    if checks_us:
        lines += [
            "",
            f"The token check alone, in process against cached keys ({len(checks_us)} checks): "
            f"p50 {statistics.median(checks_us):.0f} µs, p95 {percentile(checks_us, 0.95):.0f} µs.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_round_options(parser, "mode")
    args = parser.parse_args(argv)
    check_round_options(parser, args)
    with two_apis() as (stack, key_api_url):
        key, token = run(
            stack,
            key_api_url,
            iterations=args.iterations,
            warmup=args.warmup,
            think_ms=args.think_ms,
        )
        assert stack.token_issuer is not None
        checks = token_check_microseconds(stack, stack.token_issuer.mint(), TOKEN_CHECKS)
    print(markdown_table(key, token, args.iterations, checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
