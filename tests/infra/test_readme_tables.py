"""The README's generated tables are exactly what their scripts print (config keys from
infra/config.py, storage grants from infra/data_access.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from infra.config import CONFIG_FIELDS
from infra.data_access import Caller, grant_plan
from scripts import config_table, roles_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_config_table_has_one_row_per_config_key() -> None:
    rows = config_table.render_table().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == [f"`{f.key}`" for f in CONFIG_FIELDS]
    assert all(row.count(" | ") == 4 for row in rows)


def test_roles_table_has_one_row_per_grant() -> None:
    rows = roles_table.render_table().splitlines()[2:]
    expected = sum(len(grant_plan(caller, custom_roles=False)) for caller in Caller)
    assert len(rows) == expected
    assert all(row.count(" | ") == 4 for row in rows)
    recordings = next(row for row in rows if "| recordings container |" in row)
    assert "`blobs/tags/write`" in recordings
    assert "(Storage Blob Data Owner)" in recordings


@pytest.mark.parametrize("script", [config_table, roles_table], ids=lambda m: m.__name__)
def test_readme_contains_exactly_the_generated_table(script: ModuleType) -> None:
    text = README.read_text(encoding="utf-8")
    command = f"python -m {script.__name__}"
    assert script.START_MARKER in text and script.END_MARKER in text, (
        f"README.md lacks the markers {script.START_MARKER}; paste `{command}` between them"
    )
    between = text.split(script.START_MARKER, 1)[1].split(script.END_MARKER, 1)[0]
    assert between.strip("\n") == script.render_table().strip("\n"), (
        f"README table is stale: regenerate it with `{command}`"
    )
