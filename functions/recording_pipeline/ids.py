"""Reversible encoding of ACS identifiers for Table keys and blob path segments.

Recording ids are opaque base64-like strings (``+``, ``/`` and ``=`` appear), server call ids are
base64url, participant ids look like ``8:acs:<guid>`` or ``4:+15551234567``. Table Storage keys
forbid ``/``, ``\\``, ``#``, ``?`` and control characters, and a ``/`` or ``..`` inside a blob name
would create or escape virtual folders. One encoding serves both: ASCII letters, digits, ``-``
and ``_`` stay as they are (so GUID call ids stay readable) and every other UTF-8 byte becomes
``%XX`` with upper-case hex. ``decode_id(encode_id(x)) == x`` for every string ``x``.
"""

from __future__ import annotations

import string
from urllib.parse import unquote

_KEPT = frozenset(string.ascii_letters + string.digits + "-_")


def encode_id(value: str) -> str:
    """Encode ``value`` so it is a safe Table key and a single, literal blob path segment.

    :raises ValueError: if ``value`` is empty (an empty key or path segment is never meant).
    """
    if not value:
        raise ValueError("an identifier must not be empty")
    return "".join(
        char if char in _KEPT else "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in value
    )


def decode_id(encoded: str) -> str:
    """Invert :func:`encode_id`."""
    return unquote(encoded, encoding="utf-8", errors="strict")
