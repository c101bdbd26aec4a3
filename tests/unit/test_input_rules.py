"""The shared input rules: JSON that no parser failure escapes, text, ids and their key limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recording_pipeline.clock import iso, parse_timestamp
from recording_pipeline.ids import encode_id
from recording_pipeline.input_rules import (
    MAX_JSON_DEPTH,
    TABLE_KEY_MAX_CHARS,
    UnreadableJsonError,
    blob_name_problem,
    id_problem,
    invalid_text_path,
    key_id_problem,
    load_json,
    sanitized,
)

BOUNDED = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("[" * 30_000 + "]" * 30_000, "nests too deeply"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), f"deeper than {MAX_JSON_DEPTH}"),
        ('{"n": ' + "9" * 5000 + "}", "cannot be read"),
        (b'{"a": "\xff"}', "is not UTF-8"),
        ('{"a": ', "is not valid JSON"),
        ("", "is not valid JSON"),
    ],
    ids=["recursion", "too-deep", "5000-digits", "not-utf8", "truncated", "empty"],
)
def test_every_parser_failure_is_one_error_with_a_reason(data: str | bytes, reason: str) -> None:
    with pytest.raises(UnreadableJsonError) as caught:
        load_json(data)
    assert reason in caught.value.reason


def test_a_document_at_the_depth_limit_is_read() -> None:
    depth = MAX_JSON_DEPTH
    assert load_json("[" * depth + "]" * depth) is not None


@BOUNDED
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_load_json_raises_nothing_but_its_own_error(data: bytes | str) -> None:
    try:
        load_json(data)
    except UnreadableJsonError as error:
        assert error.reason


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"a": "ok", "b": ["x", "bad\ud800"]}, "b[1]"),
        ([{"id": "\udfff"}], "[0].id"),
        ({"k\ud800": 1}, "k\\ud800"),
        ("\ud800", ""),
        ({"a": ["fine", {"b": "\U0001f600"}]}, None),
    ],
)
def test_invalid_text_is_found_with_its_path(document: object, path: str | None) -> None:
    assert invalid_text_path(document) == path


def test_sanitized_replaces_each_lone_surrogate_and_says_so() -> None:
    clean, changed = sanitized({"a": ["x\ud800y", 3], "b": "ok"})
    assert changed
    assert clean == {"a": ["x\ufffdy", 3], "b": "ok"}
    json.dumps(clean, ensure_ascii=False).encode("utf-8")
    assert sanitized({"a": "ok"}) == ({"a": "ok"}, False)


# The worst case of encode_id per character: ASCII punctuation 3, a 3-byte character 9, a
# character outside the BMP 12. The key limit is on the encoded length.
@pytest.mark.parametrize(
    ("character", "longest"),
    [("a", 512), ("+", 170), ("\u20ac", 56), ("\U0001f600", 42)],
    ids=["letter", "punctuation", "bmp", "astral"],
)
def test_key_rule_takes_exactly_what_fits_a_table_key(character: str, longest: int) -> None:
    assert key_id_problem(character * longest) is None
    assert len(encode_id(character * longest)) <= TABLE_KEY_MAX_CHARS
    problem = key_id_problem(character * (longest + 1))
    assert problem is not None and "too long to be a Table key" in problem


def test_key_rule_counts_the_key_prefix() -> None:
    prefix = "participant-"
    assert key_id_problem("a" * 500, key_prefix=prefix) is None
    assert key_id_problem("a" * 501, key_prefix=prefix) is not None


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a\ud800", "valid Unicode text"),
        ("a\x00b", "control characters"),
        ("a\x85b", "control characters"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_id_rule(value: str, rule: str) -> None:
    problem = id_problem(value)
    assert problem is not None and rule in problem


def test_blob_name_limits() -> None:
    assert blob_name_problem("a" * 1024) is None
    assert "1024" in (blob_name_problem("a" * 1025) or "")
    assert blob_name_problem("/".join("a" * 254)) is None
    assert "254" in (blob_name_problem("/".join("a" * 255)) or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T10:00:00.000Z", "2026-01-01T10:00:00.000000Z"),
        ("2026-01-01T10:00:00.9017467+00:00", "2026-01-01T10:00:00.901746Z"),
        ("2026-01-01T12:00:00+02:00", "2026-01-01T10:00:00.000000Z"),
        ("garbage-time", None),
        ("2026-01-01", None),
        ("2026-01-01T10:00:00", None),
        ("2026-W01-1T10:00Z", None),
        ("2026-13-01T10:00:00Z", None),
    ],
)
def test_timestamps_are_iso_8601_with_a_zone(text: str, expected: str | None) -> None:
    moment = parse_timestamp(text)
    assert (None if moment is None else iso(moment)) == expected
