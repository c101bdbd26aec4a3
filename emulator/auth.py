"""HMAC-SHA256 request signing as ACS checks it (the scheme of the SDK's HMACCredentialsPolicy).

String to sign: ``VERB\\npath_and_query\\nx-ms-date;host;x-ms-content-sha256``, keyed with the
base64-decoded access key. Media downloads are signed the same way with the path of the media
URL, so they are verified here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from emulator.constants import HMAC_CLOCK_SKEW_SECONDS
from emulator.errors import Unauthorized

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
_SCHEME = "HMAC-SHA256"


def decode_access_key(access_key: str) -> bytes:
    """The signing key; a key that is not base64 is refused at start-up, not per request."""
    try:
        return base64.b64decode(access_key, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("access key must be base64") from exc


def content_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def sign(key: bytes, verb: str, path_and_query: str, date: str, host: str, body_hash: str) -> str:
    string_to_sign = f"{verb.upper()}\n{path_and_query}\n{date};{host};{body_hash}"
    return base64.b64encode(
        hmac.new(key, string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()


def _path_spellings(raw_path_and_query: str) -> list[str]:
    """The path as received plus canonical re-quotings of each of its segments.

    HTTP clients may re-quote a path between signing and sending (aiohttp turns the SDK's
    ``%3D`` into ``=`` but keeps ``%2B`` and ``%2F``). Each spelling decodes to the same
    segments, so accepting them weakens nothing: a different path never matches.
    """
    path, sep, query = raw_path_and_query.partition("?")
    segments = [unquote(segment) for segment in path.split("/")]
    spellings = [raw_path_and_query]
    for safe in (":", ":=+", ":@!$&'()*+,;="):
        candidate = "/".join(quote(segment, safe=safe) for segment in segments) + sep + query
        if candidate not in spellings:
            spellings.append(candidate)
    return spellings


def verify_request(
    key: bytes,
    *,
    method: str,
    raw_path_and_query: str,
    host: str,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """Raise ``Unauthorized`` naming what is wrong; return quietly when the signature holds."""
    authorization = headers.get("authorization", "")
    if not authorization:
        raise Unauthorized("Missing 'Authorization' header: HMAC-SHA256 signature required.")
    scheme, _, params = authorization.partition(" ")
    fields = dict(part.split("=", 1) for part in params.split("&") if "=" in part)
    if scheme != _SCHEME or "Signature" not in fields:
        raise Unauthorized("'Authorization' must be 'HMAC-SHA256 SignedHeaders=...&Signature=...'.")
    if fields.get("SignedHeaders", "").lower() != SIGNED_HEADERS:
        raise Unauthorized(f"'SignedHeaders' must be '{SIGNED_HEADERS}'.")
    date = headers.get("x-ms-date", "")
    _check_fresh(date, time.time() if now is None else now)
    body_hash = content_hash(body)
    if headers.get("x-ms-content-sha256", "") != body_hash:
        raise Unauthorized("'x-ms-content-sha256' does not match the SHA-256 of the request body.")
    for path in _path_spellings(raw_path_and_query):
        expected = sign(key, method, path, date, host, body_hash)
        if hmac.compare_digest(expected, fields["Signature"]):
            return
    raise Unauthorized("HMAC signature does not match: wrong access key, host, path or body.")


def _check_fresh(date: str, now: float) -> None:
    if not date:
        raise Unauthorized("Missing 'x-ms-date' header.")
    try:
        sent = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError) as exc:
        raise Unauthorized(f"'x-ms-date' is not an RFC 1123 date: {date!r}.") from exc
    if abs(now - sent) > HMAC_CLOCK_SKEW_SECONDS:
        raise Unauthorized(
            f"'x-ms-date' {date!r} is more than {HMAC_CLOCK_SKEW_SECONDS} seconds from server time."
        )
