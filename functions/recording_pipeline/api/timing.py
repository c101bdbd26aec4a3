"""``Server-Timing`` on every answer: how long the request spent in ACS and in the registry.

A slow answer then says by itself where the time went (``acs;dur=4.1, registry;dur=3.0,
total;dur=8.2``), in browser dev tools, in logs and in ``scripts/bench_api.py``, without a
profiler. Durations are collected per request through a context variable, which the thread
pool that runs the SDK calls inherits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_SPANS: ContextVar[dict[str, float] | None] = ContextVar("server_timing_spans", default=None)


@contextmanager
def measure(name: str) -> Iterator[None]:
    """Add the block's duration to ``name`` for the current request (no-op outside one)."""
    spans = _SPANS.get()
    began = time.perf_counter()
    try:
        yield
    finally:
        if spans is not None:
            spans[name] = spans.get(name, 0.0) + (time.perf_counter() - began) * 1000


class ServerTimingMiddleware:
    """Pure ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        spans: dict[str, float] = {}
        token = _SPANS.set(spans)
        began = time.perf_counter()

        async def send_with_timing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                total = (time.perf_counter() - began) * 1000
                parts = [f"{name};dur={value:.2f}" for name, value in sorted(spans.items())]
                header = ", ".join([*parts, f"total;dur={total:.2f}"])
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"server-timing", header.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _SPANS.reset(token)


def parse(header: str) -> dict[str, float]:
    """``{"acs": 4.1, ...}`` from a ``Server-Timing`` header (for clients and tests)."""
    durations: dict[str, float] = {}
    for part in header.split(","):
        name, _, parameters = part.strip().partition(";")
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key == "dur":
                durations[name] = float(value)
    return durations
