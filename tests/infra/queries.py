"""Small lookups over captured registrations, with failures that say what was looked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.infra.mocks import Registration

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"


def of_type(registrations: Iterable[Registration], type_: str) -> list[Registration]:
    return [r for r in registrations if r.type_ == type_]


def one(registrations: Iterable[Registration], type_: str, name: str | None = None) -> Registration:
    """The single registration of ``type_`` (named ``name`` when given)."""
    found = [r for r in of_type(registrations, type_) if name is None or r.name == name]
    assert len(found) == 1, f"expected one {type_} {name or ''}, found {[r.name for r in found]}"
    return found[0]


def by_urn(registrations: Iterable[Registration]) -> dict[str, Registration]:
    return {r.urn: r for r in registrations}


def dig(value: Any, *path: str | int) -> Any:
    """value[path0][path1]..., failing with the path that was missing."""
    current = value
    for index, key in enumerate(path):
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise AssertionError(f"missing {'/'.join(map(str, path[: index + 1]))}") from None
    return current
