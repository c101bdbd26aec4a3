"""Print the README's table of storage grants, generated from infra/data_access.py.

The README holds this output between ``<!-- roles-table:start -->`` and
``<!-- roles-table:end -->``; tests/infra/test_config_table.py fails when the two drift apart.
"""

from __future__ import annotations

import sys

from infra import data_access
from infra.data_access import OPERATIONS, Caller
from infra.roles import BuiltInRole, CustomRoleSpec

START_MARKER = "<!-- roles-table:start -->"
END_MARKER = "<!-- roles-table:end -->"
_STORAGE = "Microsoft.Storage/storageAccounts/"
_COLLECTIONS = ("containers/", "queues/", "tables/")
_IDENTITY = {
    Caller.FUNCTION_APP: "Function App",
    Caller.EVENT_GRID: "Event Grid topic",
    Caller.OPERATOR: "you, running `replay_poison` / `export_participant`",
}


def _short(permission: str) -> str:
    """``blobs/tags/write`` for ``Microsoft.Storage/.../containers/blobs/tags/write``."""
    rest = permission.removeprefix(_STORAGE).split("/", 1)[1]
    for collection in _COLLECTIONS:
        inner = rest.removeprefix(collection)
        if inner != rest and inner.split("/", 1)[0] in ("blobs", "messages", "entities"):
            return inner
    return rest


def _role(role: BuiltInRole | CustomRoleSpec) -> str:
    if isinstance(role, BuiltInRole):
        return role.name
    return f"custom “{role.title}”"


def render_table() -> str:
    """One row per (identity, scope): the role, what it grants, and the operations it is for."""
    lines = [
        "| identity | scope | role (with `customRoles: false`) | permissions used | for |",
        "|---|---|---|---|---|",
    ]
    for caller in Caller:
        builtin = data_access.grant_plan(caller, custom_roles=False)
        program = caller in data_access.PROGRAM_CALLERS
        plan = data_access.grant_plan(caller, custom_roles=True) if program else builtin
        for scope, role in plan.items():
            if program:
                fallback = "" if builtin[scope] == role else f" ({_role(builtin[scope])})"
            else:
                fallback = " (not assigned by the program)"
            needed = data_access.needs(caller, scope)
            permissions = ", ".join(
                f"`{_short(p)}`" for p in sorted(needed.actions | needed.data_actions)
            )
            operations = ", ".join(
                op.operation for op in OPERATIONS if op.caller is caller and op.scope is scope
            )
            lines.append(
                f"| {_IDENTITY[caller]} | {scope.value} | {_role(role)}{fallback} | "
                f"{permissions} | {operations} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
