"""Print the README's configuration table, generated from the typed config (infra/config.py).

The README holds this output between ``<!-- config-table:start -->`` and
``<!-- config-table:end -->``; tests/infra/test_config_table.py fails when the two drift apart.
"""

from __future__ import annotations

import json
import sys

from infra.config import CONFIG_FIELDS, PROJECT, ConfigField

START_MARKER = "<!-- config-table:start -->"
END_MARKER = "<!-- config-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: ConfigField) -> str:
    value = field.default
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def render_table() -> str:
    """The Markdown table: key, type, default, rule, description; one row per config key."""
    lines = [
        f"| key (`{PROJECT}:`…) | type | default | rule | description |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{f.key}` | {f.type_name} | {_default(f)} | {_cell(f.rule)} | {_cell(f.description)} |"
        for f in CONFIG_FIELDS
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
