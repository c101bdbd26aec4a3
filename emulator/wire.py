"""The HTTP wire format: reading request bodies and paths, writing JSON, errors and byte ranges.

Handlers and middleware use these helpers so the provider never sees aiohttp objects and every
response is shaped the same way.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from emulator.errors import InvalidField, RangeNotSatisfiable, ServiceError, http_status_of
from emulator.faults import FaultRule

STREAM_BLOCK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def read_json(request: web.Request) -> object:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidField("body", "must be valid JSON") from exc


def raw_path(request: web.Request) -> str:
    """Path exactly as sent (still percent-encoded), without the query."""
    return request.raw_path.partition("?")[0]


def path_segment(value: str) -> str:
    return unquote(value)


def json_response(payload: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def empty_response(status: int) -> web.Response:
    return web.Response(status=status)


def error_response(error: ServiceError) -> web.Response:
    shape: dict[str, object] = {"code": error.code, "message": error.message}
    if error.details:
        shape["details"] = error.details
    response = json_response({"error": shape}, http_status_of(error))
    response.headers["x-ms-error-code"] = error.code
    response.headers.update(error.headers)
    return response


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """``None`` for the whole object; 416 for a range that cannot be served."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(0) == "bytes=-":
        raise _unsatisfiable(header, size)
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(header, size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise _unsatisfiable(header, size)
    return ByteRange(start, end)


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"Range '{header}' cannot be satisfied for an object of {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"},
    )


async def file_blocks(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            block = handle.read(min(STREAM_BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block


async def write_body(
    request: web.Request,
    response: web.StreamResponse,
    blocks: AsyncIterator[bytes],
    fault: FaultRule | None,
) -> web.StreamResponse:
    """Send the body, honouring a ``slow`` (paced) or ``drop`` (cut connection) fault."""
    await response.prepare(request)
    sent = 0
    async for block in blocks:
        if fault is not None and fault.kind == "drop" and sent + len(block) >= fault.after_bytes:
            await response.write(block[: max(0, fault.after_bytes - sent)])
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("connection dropped by fault injection")
        if fault is not None and fault.kind == "slow":
            await _paced_write(response, block, fault.bytes_per_second)
        else:
            await response.write(block)
        sent += len(block)
    await response.write_eof()
    return response


async def _paced_write(response: web.StreamResponse, block: bytes, rate: int) -> None:
    piece = max(1, rate // 20)
    for offset in range(0, len(block), piece):
        part = block[offset : offset + piece]
        await response.write(part)
        await asyncio.sleep(len(part) / rate)


async def single_block(data: bytes) -> AsyncIterator[bytes]:
    yield data
