"""Read one ACS media URL in byte ranges through the Call Automation SDK, surviving faults.

``CallAutomationClient.download_recording`` is a single GET (and sends no ``Range`` header at
offset 0), so resuming is done here: every read asks for an explicit ``Range``, and when the
connection drops, or ACS answers 429 or 5xx, the next attempt asks for the bytes after the last
one received instead of starting the range again. Failures are counted only while no byte
arrives, so a slow but advancing download is never abandoned, and ``Retry-After`` is honoured.
The SDK's own retry policy is switched off by the caller (``retry_total=0``) so there is one
retry loop with one set of rules.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.communication.callautomation import CallAutomationClient
from azure.core.exceptions import (
    DecodeError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

LOGGER = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+)")
_STREAM_ERRORS = (
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
    DecodeError,
    ConnectionError,
    OSError,
)


class SourceGoneError(Exception):
    """ACS answered 404/410: the chunk expired or was deleted. Retrying cannot bring it back."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        super().__init__(f"ACS answered {status} for {url}")


class SourceUnavailableError(Exception):
    """Retries are exhausted (or the source misbehaves); the message should be redelivered."""


@dataclass(frozen=True)
class RetrySchedule:
    """How long to wait between attempts that made no progress."""

    max_failures: int = 8
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    max_retry_after_seconds: float = 300.0

    def delay(self, failures: int, retry_after: float | None) -> float:
        """``Retry-After`` wins when the service sent one; else capped exponential with jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_seconds)
        backoff = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (failures - 1))
        return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


class _TransientError(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(detail)


class MediaSource:
    """One ACS media URL (content or metadata of a chunk), read range by range."""

    def __init__(
        self,
        client: CallAutomationClient,
        url: str,
        *,
        retry: RetrySchedule,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.url = url
        self._retry = retry
        self._sleep = sleep
        self.total_size: int | None = None

    def read_range(self, start: int, max_length: int) -> bytes:
        """Up to ``max_length`` bytes from ``start`` (fewer only at the end of the source).

        Sets :attr:`total_size` from the first answer and checks later answers agree with it.

        :raises SourceGoneError: on 404/410.
        :raises SourceUnavailableError: after ``max_failures`` attempts in a row without progress.
        :raises ~azure.core.exceptions.HttpResponseError: on other errors (auth, bad request).
        """
        buffer = _Pieces()
        failures = 0
        while True:
            wanted = self._wanted(start, max_length)
            if len(buffer) >= wanted:
                return buffer.join()
            before = len(buffer)
            try:
                self._read_into(buffer, start + len(buffer), start + wanted - 1)
            except _TransientError as error:
                failures = 1 if len(buffer) > before else failures + 1
                if failures > self._retry.max_failures:
                    raise SourceUnavailableError(
                        f"{self.url}: {failures} attempts without progress at byte "
                        f"{start + len(buffer)}; last error: {error}"
                    ) from error
                delay = self._retry.delay(failures, error.retry_after)
                LOGGER.warning(
                    "media read of %s at byte %d failed (%s); retry %d in %.2fs",
                    self.url,
                    start + len(buffer),
                    error,
                    failures,
                    delay,
                )
                self._sleep(delay)

    def _wanted(self, start: int, max_length: int) -> int:
        if self.total_size is None:
            return max_length
        return max(0, min(max_length, self.total_size - start))

    def _read_into(self, buffer: _Pieces, first: int, last: int) -> None:
        """One GET for bytes ``first..last``; appends what arrives before any failure."""
        response = self._open(first, last)
        try:
            self._check_start(response, first)
            wanted = last - first + 1
            if self.total_size is not None:
                wanted = min(wanted, self.total_size - first)
            if wanted <= 0:
                return
            received = 0
            try:
                for piece in response.iter_raw():
                    take = min(len(piece), wanted - received)
                    buffer.append(piece[:take])
                    received += take
                    if received >= wanted:
                        return
            except (*_STREAM_ERRORS, HttpResponseError) as error:
                raise _TransientError(
                    f"connection dropped after {received} bytes: {error}"
                ) from error
            raise _TransientError(f"response ended after {received} of {wanted} bytes")
        finally:
            response.close()

    def _open(self, first: int, last: int) -> Any:
        if self.total_size is not None and first >= self.total_size:
            raise SourceUnavailableError(f"{self.url}: asked for byte {first} past the end")
        try:
            return self._client.download_recording(
                self.url, headers={"Range": f"bytes={first}-{last}"}
            )
        except ResourceNotFoundError as error:
            raise SourceGoneError(self.url, 404) from error
        except HttpResponseError as error:
            status = error.status_code or 0
            if status in GONE_STATUSES:
                raise SourceGoneError(self.url, status) from error
            if status == 416:
                return _EmptyResponse(self._total_from_416(error))
            if status in TRANSIENT_STATUSES or status == 0:
                raise _TransientError(f"HTTP {status}", _retry_after(error)) from error
            raise
        except _STREAM_ERRORS as error:
            raise _TransientError(f"request failed: {error}") from error

    def _total_from_416(self, error: HttpResponseError) -> int:
        match = _CONTENT_RANGE.fullmatch(_header(error.response, "Content-Range"))
        if match is None:
            raise SourceUnavailableError(f"{self.url}: 416 without a Content-Range") from error
        self._set_total(int(match.group(3)))
        return int(match.group(3))

    def _check_start(self, response: Any, first: int) -> None:
        if isinstance(response, _EmptyResponse):
            return
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(_header(response, "Content-Range"))
            if match is None or match.group(1) is None or int(match.group(1)) != first:
                raise SourceUnavailableError(
                    f"{self.url}: asked for byte {first}, got Content-Range "
                    f"{_header(response, 'Content-Range')!r}"
                )
            self._set_total(int(match.group(3)))
        elif response.status_code == 200 and first == 0:
            # The server ignored Range: the body is the whole object from byte 0. Its size must be
            # stated: an unknown or zero size would let an empty blob pass as the whole chunk
            # (an empty object answers a Range request with 416 "bytes */0", handled above).
            length = _header(response, "Content-Length")
            if not length.isdigit() or int(length) == 0:
                raise SourceUnavailableError(
                    f"{self.url}: 200 to a Range request with Content-Length {length!r}"
                )
            self._set_total(int(length))
        else:
            raise SourceUnavailableError(
                f"{self.url}: status {response.status_code} to a Range request at byte {first}"
            )

    def _set_total(self, total: int) -> None:
        if self.total_size is None:
            self.total_size = total
        elif self.total_size != total:
            raise SourceUnavailableError(
                f"{self.url}: size changed from {self.total_size} to {total} during the copy"
            )


class _Pieces:
    """The pieces of one block as they arrive, joined once at the end (one copy, not two)."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._length = 0

    def append(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._length += len(piece)

    def __len__(self) -> int:
        return self._length

    def join(self) -> bytes:
        return b"".join(self._pieces)


class _EmptyResponse:
    """Stands in for a 416 answer at the end of the object: nothing (more) to read."""

    status_code = 416

    def __init__(self, total: int) -> None:
        self.total = total

    def iter_raw(self) -> list[bytes]:
        return []

    def close(self) -> None:
        return None


def _header(response: Any, name: str) -> str:
    if response is None:
        return ""
    return str(response.headers.get(name) or "")


def _retry_after(error: HttpResponseError) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date)."""
    raw = _header(error.response, "Retry-After").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
