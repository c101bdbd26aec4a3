"""The wait between Event Grid's role grants and the subscription Azure validates with them."""

from __future__ import annotations

from infra.propagation import PropagationWaitProvider


def test_create_waits_the_configured_time_once() -> None:
    sleeps: list[float] = []
    provider = PropagationWaitProvider(sleep=sleeps.append)
    result = provider.create({"grant_ids": ["a", "b"], "seconds": 120})
    assert sleeps == [120.0]
    assert result.outs == {"grant_ids": ["a", "b"], "seconds": 120}


def test_only_new_grants_make_it_wait_again() -> None:
    sleeps: list[float] = []
    provider = PropagationWaitProvider(sleep=sleeps.append)
    olds = {"grant_ids": ["a", "b"], "seconds": 120}
    assert provider.diff("w", olds, {"grant_ids": ["b", "a"], "seconds": 120}).changes is False
    assert provider.diff("w", olds, {"grant_ids": ["a", "b"], "seconds": 300}).changes is False
    replaced = {"grant_ids": ["a", "c"], "seconds": 60}
    assert provider.diff("w", olds, replaced).changes is True
    provider.update("w", olds, replaced)
    assert sleeps == [60.0]
