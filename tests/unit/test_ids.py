"""Identifier encoding: safe as Table keys and as one literal blob path segment, and reversible."""

from __future__ import annotations

import pytest

from recording_pipeline.ids import decode_id, encode_id

FORBIDDEN_IN_TABLE_KEYS = set("/\\#?")


@pytest.mark.parametrize(
    "value",
    [
        "eyJQbGF0Zm9ybUVuZHBvaW50SWQiOiIxIn0=",
        "a+b/c==",
        "../../etc/passwd",
        "50%off",
        "line\nbreak\x00nul\x7f",
        "8:acs:1c8a2b5e-0000-4000-8000-000000000001",
        "4:+15551234567",
        "naïve—ünïcode☎",
    ],
)
def test_encoding_round_trips_and_is_a_safe_key_and_segment(value: str) -> None:
    encoded = encode_id(value)
    assert decode_id(encoded) == value
    assert not FORBIDDEN_IN_TABLE_KEYS & set(encoded)
    assert all(0x20 < ord(c) < 0x7F for c in encoded), "no control or non-ASCII characters"
    assert "." not in encoded, "no '.', so no '..' segment can appear"


def test_guid_like_ids_stay_readable() -> None:
    call_id = "1c8a2b5e-0000-4000-8000-000000000001"
    assert encode_id(call_id) == call_id


def test_distinct_ids_never_collide() -> None:
    values = ["a/b", "a%2Fb", "a_2Fb", "a%252Fb", "a+b", "a b"]
    assert len({encode_id(v) for v in values}) == len(values)


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        encode_id("")
