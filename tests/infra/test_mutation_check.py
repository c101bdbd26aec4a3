"""The mutation check itself: its mutations apply, and a flipped property really fails a test.

The full run (every mutation, ~33 pytest runs) is `python -m scripts.mutation_check`; here one
mutation runs end to end against its untouched twin, so the machinery cannot rot unnoticed.
"""

from __future__ import annotations

from scripts.mutation_check import MUTATIONS, check_mutations_apply, run_mutation

TARGET = ["tests/infra/test_storage.py::test_every_storage_account_has_the_hardened_baseline"]


def test_every_mutation_rewrites_exactly_one_place() -> None:
    check_mutations_apply()
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)
    assert all(m.old != m.new for m in MUTATIONS)


def test_a_flipped_property_fails_the_test_that_pins_it() -> None:
    public_blob = next(m for m in MUTATIONS if m.name == "storage-public-blob")
    untouched = run_mutation(None, TARGET)
    assert untouched.caught is False, untouched.detail
    flipped = run_mutation(public_blob, TARGET)
    assert flipped.caught is True
    assert flipped.detail.startswith(f"FAILED {TARGET[0]}")
