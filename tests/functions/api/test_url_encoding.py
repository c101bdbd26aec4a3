"""Percent-encoded bytes that are not UTF-8 in a path or query: a 400 naming the parameter.

The server decodes such bytes to U+FFFD, so without the check ``/api/recordings/%FF`` looked up
a recording with the id "\\ufffd" (404) and ``?serverCallId=%FF`` listed an empty page (200).
"""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recording_pipeline.api.request_guard import NOT_UTF8
from tests.functions.stack import FUNCTION_KEY, ApiServer

KEYED = {"x-functions-key": FUNCTION_KEY}
#: Encoded lone surrogate, a lone continuation byte, an overlong "/", a truncated sequence.
NOT_UTF8_SAMPLES = (b"\xed\xa0\x80", b"\xff", b"\xc0\xaf", b"ab\xe2\x82")


def percent(data: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in data)


def is_utf8(data: bytes) -> bool:
    """The oracle, independent of the app's check: UTF-8 bytes survive a lenient round trip."""
    return data.decode("utf-8", errors="replace").encode("utf-8") == data


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    problem = response.json()
    assert (problem["field"], problem["detail"]) == (field, NOT_UTF8)


def test_each_place_names_its_parameter(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base_url, headers=KEYED, timeout=30) as http:
        for sample in NOT_UTF8_SAMPLES:
            bad = percent(sample)
            assert_refused(http.get(f"/api/recordings/{bad}"), "recordingId")
            assert_refused(http.post(f"/api/recordings/rec-1{bad}:pause"), "recordingId")
            assert_refused(http.delete(f"/api/recordings/{bad}"), "recordingId")
            assert_refused(http.get(f"/api/recordings/rec-1/archive/files/{bad}"), "fileName")
            assert_refused(http.get(f"/api/recordings/{bad}/archive/manifest"), "recordingId")
            assert_refused(http.get(f"/api/recordings?serverCallId={bad}"), "serverCallId")
            assert_refused(
                http.get(f"/api/recordings?continuationToken=x{bad}"), "continuationToken"
            )
            assert_refused(http.get(f"/api/recordings?{bad}=1"), "query")


def test_without_the_key_it_is_still_401_first(api: ApiServer) -> None:
    with httpx.Client(base_url=api.base_url, timeout=30) as http:
        assert http.get("/api/recordings/%FF").status_code == 401


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(min_size=1, max_size=24), place=st.sampled_from(["path", "query"]))
def test_any_bytes_are_refused_exactly_when_they_are_not_utf8(
    api: ApiServer, raw: bytes, place: str
) -> None:
    with httpx.Client(base_url=api.base_url, headers=KEYED, timeout=30) as http:
        if place == "path":
            response, field = http.get(f"/api/recordings/{percent(raw)}"), "recordingId"
        else:
            response, field = (
                http.get(f"/api/recordings?serverCallId={percent(raw)}"),
                "serverCallId",
            )
    refused = response.status_code == 400 and response.json().get("detail") == NOT_UTF8
    assert refused == (not is_utf8(raw))
    if refused:
        assert response.json()["field"] == field
    else:
        assert response.status_code in {200, 400, 404}, response.text
