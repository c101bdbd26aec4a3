"""A small HTTP server that serves media objects the way ACS does, with faults on demand.

The archiver tests and benchmark need a source they fully control: objects of any size (a 1 GiB
body is generated from a repeating seeded pattern, never held in memory), ``Range``/206 answers,
``DELETE``, and faults that ACS shows in real life: 5xx and 429 with ``Retry-After`` for the next
N requests, and connections dropped after a given absolute byte offset. It answers whatever path
is asked, so ACS media URLs routed here by ``ACS_MEDIA_ENDPOINT_OVERRIDE`` keep their
``/v1/objects/<documentId>/...`` paths. It checks no credentials: it stands in for the media store,
not for ACS's authentication (the emulator covers that).

Run standalone (the benchmark does, so its CPU is not shared with the process measured)::

    python -m scripts.synthetic_media_server --port 8123 \\
        --object /v1/objects/doc/content/audio=1073741824
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import signal
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from local_runtime.processes import free_port

PATTERN_LENGTH = 1024 * 1024 + 17  # not a power of two, so blocks of the body differ
WRITE_PIECE = 256 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class MediaObject:
    """Bytes given literally, or ``size`` bytes of a seeded repeating pattern."""

    size: int
    data: bytes | None = None
    seed: int = 0
    content_type: str = "application/octet-stream"
    _pattern: bytes | None = field(default=None, repr=False)

    @classmethod
    def literal(cls, data: bytes, content_type: str = "application/octet-stream") -> MediaObject:
        return cls(size=len(data), data=data, content_type=content_type)

    def pieces(self, start: int, end: int) -> Iterator[memoryview]:
        """Bytes ``start..end`` (inclusive) in pieces of at most ``WRITE_PIECE``."""
        if self.data is not None:
            view = memoryview(self.data)
            for position in range(start, end + 1, WRITE_PIECE):
                yield view[position : min(end + 1, position + WRITE_PIECE)]
            return
        pattern = memoryview(self.pattern)
        position = start
        while position <= end:
            index = position % PATTERN_LENGTH
            take = min(WRITE_PIECE, PATTERN_LENGTH - index, end + 1 - position)
            yield pattern[index : index + take]
            position += take

    @property
    def pattern(self) -> bytes:
        if self._pattern is None:
            self._pattern = random.Random(self.seed).randbytes(PATTERN_LENGTH)
        return self._pattern

    def md5(self) -> bytes:
        digest = hashlib.md5()  # noqa: S324 - compared with Content-MD5
        if self.size:
            for piece in self.pieces(0, self.size - 1):
                digest.update(piece)
        return digest.digest()


@dataclass
class Fault:
    """Applied to the next ``times`` GET requests of one path.

    ``status`` answers that status (with ``retry_after`` as ``Retry-After``); ``drop_at`` sends
    the response headers and body up to that absolute offset, then closes the connection.
    """

    times: int = 1
    status: int | None = None
    retry_after: str | None = None
    drop_at: int | None = None


class SyntheticMediaServer:
    """The server, run on its own event loop thread (tests) or in the foreground (CLI)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.objects: dict[str, MediaObject] = {}
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.requests: list[tuple[str, str, str | None]] = []
        self.deleted: list[str] = []
        #: Pause after each piece written, to make a copy slow enough to interrupt.
        self.piece_delay_seconds = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add(self, path: str, media: MediaObject) -> None:
        with self._lock:
            self.objects[path] = media

    def add_objects(self, items: list[dict[str, Any]]) -> None:
        """Objects given as ``{"path", "size", "seed"}`` (seeded bytes) or ``{"path", "text"}``."""
        for item in items:
            if "text" in item:
                self.add(item["path"], MediaObject.literal(item["text"].encode()))
            else:
                self.add(item["path"], MediaObject(size=item["size"], seed=item.get("seed", 0)))

    def add_fault(self, path: str, fault: Fault) -> None:
        with self._lock:
            self.faults[path].append(fault)

    def get_requests(self, path: str) -> list[str | None]:
        """The ``Range`` headers of the GETs received for ``path``, in order."""
        with self._lock:
            return [rng for method, p, rng in self.requests if method == "GET" and p == path]

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_route("GET", "/{tail:.*}", self._get)
        application.router.add_route("HEAD", "/{tail:.*}", self._get)
        application.router.add_route("DELETE", "/{tail:.*}", self._delete)
        return application

    async def _get(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self.requests.append((request.method, path, request.headers.get("Range")))
            media = self.objects.get(path)
            fault = self._take_fault(path, request.headers.get("Range", ""), media)
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.json_response(
                {"error": {"code": "Injected", "message": f"injected {fault.status}"}},
                status=fault.status,
                headers=headers,
            )
        if media is None:
            return web.json_response({"error": {"code": "NotFound", "message": path}}, status=404)
        return await self._serve(request, media, fault)

    def _take_fault(self, path: str, range_header: str, media: MediaObject | None) -> Fault | None:
        """The next fault of ``path``; a drop waits for a request whose range reaches it."""
        queue = self.faults.get(path)
        if not queue:
            return None
        fault = queue[0]
        if fault.drop_at is not None and media is not None:
            start, end = 0, media.size - 1
            match = _RANGE.fullmatch(range_header)
            if match:
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else end
            if not start <= fault.drop_at <= end:
                return None
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _serve(
        self, request: web.Request, media: MediaObject, fault: Fault | None
    ) -> web.StreamResponse:
        start, end, status = 0, media.size - 1, 200
        match = _RANGE.fullmatch(request.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else media.size - 1, media.size - 1)
            if start >= media.size:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{media.size}"})
            status = 206
        response = web.StreamResponse(status=status)
        response.content_type = media.content_type
        response.content_length = max(0, end - start + 1)
        response.headers["Accept-Ranges"] = "bytes"
        if status == 206:
            response.headers["Content-Range"] = f"bytes {start}-{end}/{media.size}"
        await response.prepare(request)
        if request.method == "HEAD" or media.size == 0:
            return response
        drop_at = fault.drop_at if fault is not None else None
        for piece in media.pieces(start, end):
            if drop_at is not None and drop_at < start + len(piece):
                await response.write(bytes(piece[: max(0, drop_at - start)]))
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(piece)
            start += len(piece)
            if self.piece_delay_seconds:
                await asyncio.sleep(self.piece_delay_seconds)
        return response

    async def _delete(self, request: web.Request) -> web.Response:
        path = request.path
        with self._lock:
            self.requests.append(("DELETE", path, None))
            removed = [p for p in self.objects if p == path or p.startswith(path + "/")]
            for p in removed:
                del self.objects[p]
            self.deleted.append(path)
        if not removed:
            return web.json_response({"error": {"code": "NotFound", "message": path}}, status=404)
        return web.Response(status=200)

    def start_in_thread(self) -> SyntheticMediaServer:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start_site())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="synthetic-media", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("synthetic media server did not start")
        return self

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def serve_until_signalled(self) -> None:
        """Serve in this thread until SIGTERM or SIGINT (a process of its own, as the benchmark
        runs it so its CPU is not shared with the process measured)."""

        async def serve() -> None:
            await self._start_site()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            await self._cleanup()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
