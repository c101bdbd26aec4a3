"""Check an event the pipeline published against its JSON Schema in ``docs/events/``.

Each event type has its own file (``<Name>.schema.json``), which refers to the shared parts in
``common.schema.json`` by relative reference; the validator loads the file by its ``file://``
URI so those references resolve as they would for a consumer reading the directory.
Formats (``date-time``, ``uri``, ``uuid``) are asserted, not just annotated.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"
TYPE_PREFIX = "AcsCallRecording."


def schema_path(event_name: str) -> Path:
    return SCHEMA_DIR / f"{event_name}.schema.json"


@cache
def validator(event_name: str) -> Any:
    path = schema_path(event_name)
    return jsonschema_rs.validator_for(
        json.loads(path.read_text()), base_uri=path.as_uri(), validate_formats=True
    )


def schema_problems(event: dict[str, Any]) -> list[str]:
    """Every way ``event`` breaks the schema of its ``type`` (empty: it conforms)."""
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type.startswith(TYPE_PREFIX):
        return [f"type {event_type!r} is not one of this pipeline's event types"]
    name = event_type.removeprefix(TYPE_PREFIX)
    if not schema_path(name).is_file():
        return [f"no schema for {event_type} in docs/events/"]
    return [
        f"{'/'.join(str(part) for part in error.instance_path) or '(event)'}: {error.message}"
        for error in validator(name).iter_errors(event)
    ]
