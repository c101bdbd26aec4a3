"""The key is checked, and the size capped, before a byte of the body is read.

Raw sockets send the headers and only the start of a large body: an API that waits for the
whole body (to parse it before checking the key, or with no cap) never answers in time.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from recording_pipeline.api.request_guard import CALLBACK_MAX_BODY_BYTES, MAX_BODY_BYTES
from recording_pipeline.api.rules import MAX_CALLBACK_URL_LENGTH, MAX_UNMIXED_CHANNELS
from recording_pipeline.input_rules import MAX_ID_CHARS, TABLE_KEY_MAX_CHARS
from recording_pipeline.registry.schema import PARTICIPANT_PARTITION_PREFIX
from tests.functions.stack import FUNCTION_KEY, ApiServer, OidcIssuer

ANSWER_WITHIN_SECONDS = 5.0


def partial_request(
    api: ApiServer, path: str, headers: dict[str, str], declared: int | None, sent: bytes
) -> tuple[int, dict[str, Any]]:
    """Send the headers and ``sent`` (never the rest), then read the answer's status and body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {api.host}:{api.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if declared is not None:
        lines.append(f"Content-Length: {declared}")
    with socket.create_connection((api.host, api.port), timeout=ANSWER_WITHIN_SECONDS) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pytest.fail(f"no answer within {ANSWER_WITHIN_SECONDS} s: the body was being read")
        except ConnectionResetError:
            pass  # the server closed the connection after answering, with body bytes unread
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, json.loads(body)


def chunked(pieces: int, size: int) -> bytes:
    return b"".join(f"{size:x}\r\n".encode() + b"[" * size + b"\r\n" for _ in range(pieces))


def test_without_a_key_a_large_body_is_refused_before_it_is_read(api: ApiServer) -> None:
    status, problem = partial_request(
        api,
        "/api/recordings",
        {"Content-Type": "application/json"},
        declared=19_500_000,
        sent=b'{"serverCallId": "' + b"x" * 1000,
    )
    assert status == 401
    assert problem["type"].endswith(":unauthorized")


def test_with_the_key_a_body_over_the_cap_is_413_before_it_is_read(api: ApiServer) -> None:
    status, problem = partial_request(
        api,
        "/api/recordings",
        {"Content-Type": "application/json", "x-functions-key": FUNCTION_KEY},
        declared=MAX_BODY_BYTES + 1,
        sent=b"{",
    )
    assert status == 413
    assert problem["type"].endswith(":body-too-large")
    assert problem["field"] == "body"
    assert str(MAX_BODY_BYTES) in problem["detail"]


def test_a_chunked_body_is_refused_at_the_first_byte_past_the_cap(api: ApiServer) -> None:
    status, problem = partial_request(
        api,
        "/api/recordings",
        {
            "Content-Type": "application/json",
            "x-functions-key": FUNCTION_KEY,
            "Transfer-Encoding": "chunked",
        },
        declared=None,
        sent=chunked(pieces=MAX_BODY_BYTES // 4096 + 2, size=4096),  # never the last chunk
    )
    assert status == 413
    assert problem["type"].endswith(":body-too-large")


def test_a_callback_body_over_its_cap_is_413_before_it_is_read(
    callback_api: ApiServer, issuer: OidcIssuer
) -> None:
    status, problem = partial_request(
        callback_api,
        "/api/callbacks",
        {"Content-Type": "application/json", "Authorization": f"Bearer {issuer.token()}"},
        declared=CALLBACK_MAX_BODY_BYTES + 1,
        sent=b"[",
    )
    assert status == 413
    assert str(CALLBACK_MAX_BODY_BYTES) in problem["detail"]


def test_a_chunked_callback_body_is_refused_at_the_cap_after_the_token_check(
    callback_api: ApiServer, issuer: OidcIssuer
) -> None:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    sent = chunked(pieces=CALLBACK_MAX_BODY_BYTES // 4096 + 2, size=4096)
    assert partial_request(callback_api, "/api/callbacks", headers, None, sent)[0] == 401
    headers["Authorization"] = f"Bearer {issuer.token()}"
    assert partial_request(callback_api, "/api/callbacks", headers, None, sent)[0] == 413


def escaped(text: str) -> str:
    """Every character as a JSON ``\\uXXXX`` escape: the most bytes a client can spend on it."""
    return "".join(f"\\u{ord(char):04x}" for char in text)


def test_the_cap_fits_the_largest_legitimate_start_request(api: ApiServer) -> None:
    """Every field at its limit, every character escaped: under the cap, and through the guard
    to the rules and ACS (which does not know the call)."""
    participant_room = TABLE_KEY_MAX_CHARS - len(PARTICIPANT_PARTITION_PREFIX)
    participants = [f"{n}" + "p" * (participant_room - 1) for n in range(MAX_UNMIXED_CHANNELS)]
    url = "https://example.com/" + "c" * (MAX_CALLBACK_URL_LENGTH - len("https://example.com/"))
    ordering = ", ".join(f'"{escaped(p)}"' for p in participants)
    affinity = ", ".join(
        f'{{"participant": "{escaped(p)}", "channel": {n}}}' for n, p in enumerate(participants)
    )
    body = (
        f'{{"serverCallId": "{escaped("s" * MAX_ID_CHARS)}", "content": "audio", '
        f'"channel": "unmixed", "format": "wav", "pauseOnStart": false, '
        f'"audioChannelParticipantOrdering": [{ordering}], "channelAffinity": [{affinity}], '
        f'"recordingStateCallbackUrl": "{escaped(url)}"}}'
    ).encode()
    assert len(body) <= MAX_BODY_BYTES

    response = httpx.post(
        f"{api.base_url}/api/recordings",
        content=body,
        headers={"Content-Type": "application/json", "x-functions-key": FUNCTION_KEY},
        timeout=30,
    )
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith(":call-not-found")
