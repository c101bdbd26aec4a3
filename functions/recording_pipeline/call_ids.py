"""When two spellings of a call's ids name the same call.

ACS spells the same id differently in different places (a GUID in capitals or braces, a server
call id padded or in the other base64 alphabet). The archiver compares an event's ids with the
registry's, and the callbacks compare a callback's ids with the ones already stored, so the one
comparison lives here, where both may import it.
"""

from __future__ import annotations

import base64
import binascii
import uuid


def same_call_id(first: str, second: str) -> bool:
    """Call ids are GUIDs: equal as GUIDs (case, braces, hyphens aside), else as strings."""
    return _canonical_call_id(first) == _canonical_call_id(second)


def same_server_call_id(first: str, second: str) -> bool:
    """Server call ids are base64url text: equal when they decode to the same bytes (with or
    without padding, in either base64 alphabet), else when equal as strings."""
    return _canonical_server_call_id(first) == _canonical_server_call_id(second)


def _canonical_call_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _canonical_server_call_id(value: str) -> bytes | str:
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return value
