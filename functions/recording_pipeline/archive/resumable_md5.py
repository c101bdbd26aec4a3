"""An MD5 whose running state can be written down at a block boundary and picked up later.

The blob's ``Content-MD5`` must cover every byte in order, and ``hashlib`` cannot export its state,
so a copy resumed after a crash would have to read the already-staged bytes from ACS again just
to hash them. OpenSSL's ``MD5_CTX`` is a plain struct: at a 64-byte boundary its whole state is the
four chaining words A, B, C, D plus the bit count, which follows from the offset. The archiver puts
those 16 bytes (as hex) in each block id, so whoever resumes continues the hash from the last
staged block without reading it again.

The struct is reached with ``ctypes`` through the ``libcrypto`` that Python's own ``hashlib``
uses. A self-test against ``hashlib`` runs once; if the library, the symbols or the layout are not
as expected, :func:`resumable_md5_available` is False and the caller falls back to ``hashlib``
(and to reading the staged prefix again on resume).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from functools import lru_cache
from typing import Any

#: Hex of the chaining state when none can be recorded (not at a 64-byte boundary, or no OpenSSL).
NO_STATE = "0" * 32
_CONTEXT_BYTES = 128  # sizeof(MD5_CTX) is 92; spare room costs nothing
_CHAINING_BYTES = 16  # A, B, C, D
_NL_OFFSET, _NH_OFFSET, _NUM_OFFSET = 16, 20, 88


@lru_cache(maxsize=1)
def _libcrypto() -> Any | None:
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so.1.1"):
        if not name:
            continue
        try:
            library = ctypes.CDLL(name)
            for symbol in ("MD5_Init", "MD5_Update", "MD5_Final"):
                getattr(library, symbol).restype = ctypes.c_int
            library.MD5_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        except (OSError, AttributeError):
            continue
        if _self_test(library):
            return library
    return None


def resumable_md5_available() -> bool:
    return _libcrypto() is not None


class ResumableMd5:
    """MD5 over a byte stream; :meth:`checkpoint` at 64-byte boundaries, :meth:`resume` later."""

    def __init__(self, library: Any | None = None) -> None:
        loaded = library or _libcrypto()
        if loaded is None:
            raise RuntimeError("OpenSSL MD5 is not available; use hashlib")
        self._lib: Any = loaded
        self._context = ctypes.create_string_buffer(_CONTEXT_BYTES)
        self._lib.MD5_Init(self._context)
        self.length = 0

    @classmethod
    def resume(cls, state_hex: str, length: int, library: Any | None = None) -> ResumableMd5:
        """Continue a hash whose first ``length`` bytes (a multiple of 64) gave ``state_hex``."""
        if length % 64 or len(state_hex) != 2 * _CHAINING_BYTES or state_hex == NO_STATE:
            raise ValueError("a resumable MD5 state needs 32 hex digits at a 64-byte boundary")
        digest = cls(library)
        bits = length * 8
        ctypes.memmove(digest._context, bytes.fromhex(state_hex), _CHAINING_BYTES)
        _write_uint32(digest._context, _NL_OFFSET, bits & 0xFFFFFFFF)
        _write_uint32(digest._context, _NH_OFFSET, (bits >> 32) & 0xFFFFFFFF)
        _write_uint32(digest._context, _NUM_OFFSET, 0)
        digest.length = length
        return digest

    def update(self, data: bytes) -> None:
        self._lib.MD5_Update(self._context, data, len(data))
        self.length += len(data)

    def checkpoint(self) -> str:
        """The chaining state as hex, or :data:`NO_STATE` when not at a 64-byte boundary."""
        if self.length % 64:
            return NO_STATE
        return self._context.raw[:_CHAINING_BYTES].hex()

    def digest(self) -> bytes:
        out = ctypes.create_string_buffer(16)
        final_context = ctypes.create_string_buffer(self._context.raw, _CONTEXT_BYTES)
        self._lib.MD5_Final(out, final_context)
        return out.raw


def _write_uint32(buffer: Any, offset: int, value: int) -> None:
    ctypes.memmove(ctypes.addressof(buffer) + offset, value.to_bytes(4, "little"), 4)


def _self_test(library: Any) -> bool:
    """Checkpoint and resume must give hashlib's digest, or the layout is not what we think."""
    head, tail = bytes(range(256)) * 4, b"resumed tail"
    expected = hashlib.md5(head + tail, usedforsecurity=False).digest()
    try:
        whole = ResumableMd5(library)
        whole.update(head)
        resumed = ResumableMd5.resume(whole.checkpoint(), len(head), library)
        whole.update(tail)
        resumed.update(tail)
        return whole.digest() == expected and resumed.digest() == expected
    except (OSError, AttributeError, ValueError, RuntimeError):
        return False
