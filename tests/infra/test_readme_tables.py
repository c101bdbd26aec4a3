"""The README's configuration table is exactly what scripts/config_table.py prints."""

from __future__ import annotations

from pathlib import Path

from infra.config import CONFIG_FIELDS
from scripts.config_table import END_MARKER, START_MARKER, render_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_table_has_one_row_per_config_key() -> None:
    rows = render_table().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == [f"`{f.key}`" for f in CONFIG_FIELDS]
    assert all(row.count(" | ") == 4 for row in rows)


def test_readme_contains_exactly_the_generated_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert START_MARKER in text and END_MARKER in text, (
        "README.md lacks the config-table markers; paste `python -m scripts.config_table` "
        "between them"
    )
    between = text.split(START_MARKER, 1)[1].split(END_MARKER, 1)[0]
    assert between.strip("\n") == render_table().strip("\n"), (
        "README config table is stale: regenerate it with `python -m scripts.config_table`"
    )
