"""The state history's cap never lets callbacks push out the API's own entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from recording_pipeline.clock import iso
from recording_pipeline.registry.states import (
    MAX_HISTORY_ENTRIES,
    StateChange,
    fold,
    history,
    state_change,
)

START = datetime(2026, 5, 6, 7, 0, 0, tzinfo=UTC)


def change_of(index: int, source: str) -> StateChange:
    at = iso(START + timedelta(seconds=index))
    if source == "callback":
        return StateChange("inactive", at, "callback", f"event-{index}")
    return StateChange("active" if index % 2 else "inactive", at, source)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["api", "callback", "acs"]), min_size=150, max_size=450))
@example(["api"] * 3 + ["callback"] * 250)  # a flood after the start, pause and resume
@example(["api"] * 210 + ["callback"] * 5)  # a history of the API's own entries alone
def test_the_cap_drops_callbacks_first_and_keeps_time_order(sources: list[str]) -> None:
    changes = [
        state_change("rec-1", change_of(index, source), create_if_missing=True)
        for index, source in enumerate(sources)
    ]

    entity, _ = fold(None, changes)

    entries = history(entity)
    own = [
        iso(START + timedelta(seconds=i))
        for i, source in enumerate(sources)
        if source != "callback"
    ]
    callbacks = [f"event-{i}" for i, source in enumerate(sources) if source == "callback"]
    kept_own = [entry["at"] for entry in entries if entry["source"] != "callback"]
    kept_callbacks = [entry["eventId"] for entry in entries if entry["source"] == "callback"]
    assert len(entries) == min(len(sources), MAX_HISTORY_ENTRIES)
    assert [entry["at"] for entry in entries] == sorted(entry["at"] for entry in entries)
    if len(own) <= MAX_HISTORY_ENTRIES:
        assert kept_own == own  # however many callbacks came
    else:
        assert kept_own == own[len(own) - len(kept_own) :]  # only the oldest went
    assert kept_callbacks == callbacks[len(callbacks) - len(kept_callbacks) :]
