"""The reconciler's index rows take every recording id the API takes, within the Table key limit.

An index RowKey is the time, ``-``, then the encoded id; an id may fill a whole key once encoded,
so the long ones are cut and followed by a digest of the whole id. The keys must stay within
512 characters, start with the time (the partition reads in time order and is cut at a time),
and never be shared by two ids.
"""

from __future__ import annotations

import string
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recording_pipeline.clock import iso
from recording_pipeline.ids import encode_id
from recording_pipeline.input_rules import TABLE_KEY_MAX_CHARS, key_id_problem
from recording_pipeline.registry.schema import time_ordered_row_key
from tests.functions.reconcile.conftest import T0, Bed

#: Characters that encode to 1, 3, 6, 9 and 12 key characters.
_ALPHABET = string.ascii_letters + string.digits + "-_+/= é€😀"


def _within_key_rule(text: str) -> str:
    """The longest prefix of ``text`` the API's id rule admits (so ids reach the maximum)."""
    kept, used = [], 0
    for char in text:
        used += len(encode_id(char))
        if used > TABLE_KEY_MAX_CHARS:
            break
        kept.append(char)
    return "".join(kept)


RECORDING_IDS = (
    st.text(alphabet=_ALPHABET, min_size=1, max_size=600)
    .map(_within_key_rule)
    .filter(lambda value: key_id_problem(value) is None)
)
TIMES = st.integers(min_value=0, max_value=10**9).map(lambda s: iso(T0 + timedelta(seconds=s)))


@settings(max_examples=300, deadline=None)
@given(RECORDING_IDS, RECORDING_IDS, TIMES, TIMES)
def test_index_keys_fit_sort_by_time_and_never_collide(
    first: str, second: str, first_at: str, second_at: str
) -> None:
    key = time_ordered_row_key(first_at, first)

    assert len(key) <= TABLE_KEY_MAX_CHARS
    assert key.startswith(f"{first_at}-")
    if first_at != second_at:
        assert (key < time_ordered_row_key(second_at, second)) == (first_at < second_at)
    if first != second:
        assert key != time_ordered_row_key(first_at, second)
    assert time_ordered_row_key(first_at, first) == key  # the same row every time


def test_ids_that_share_the_cut_part_get_two_keys() -> None:
    first, second = "r" * 511 + "a", "r" * 511 + "b"
    assert time_ordered_row_key(iso(T0), first) != time_ordered_row_key(iso(T0), second)


def test_a_stop_of_a_recording_with_the_longest_id_is_indexed_swept_and_marked_overdue(
    bed: Bed,
) -> None:
    longest = "r" * TABLE_KEY_MAX_CHARS
    assert key_id_problem(longest) is None  # the API takes it
    bed.stopped(longest, T0 - timedelta(minutes=45))  # the API's index write
    bed.pending.add_acs_delete(longest, iso(T0), "manifest.json")

    first = bed.run(T0, force_sweep=True)
    second = bed.run(T0 + timedelta(minutes=1), force_sweep=True)

    assert first.errors == [] and second.errors == []
    assert bed.stopped_rows() == [longest]
    assert first.sweep.indexed == []  # the row the API wrote is recognised as there
    assert [item["recordingId"] for item in first.overdue.marked] == [longest]
    assert [row.recording_id for row in bed.pending.acs_deletes_before(T0 + timedelta(days=1))] == [
        longest
    ]
    bed.pending.remove_acs_delete(longest, iso(T0))
    assert list(bed.pending.acs_deletes_before(T0 + timedelta(days=1))) == []
