"""Schemathesis against the served OpenAPI document: no 5xx, and every answer (status, media
type, body) is one the document declares. Bounded examples keep it to seconds."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.functions.stack import FUNCTION_KEY, ApiServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_schema(api: ApiServer) -> Any:
    return schemathesis.openapi.from_url(
        f"{api.base_url}/api/openapi.json", headers={"x-functions-key": FUNCTION_KEY}
    )


# Every operation of the document (a test below checks the document lists exactly these).
OPERATIONS = [
    ("GET", "/api/health"),
    ("POST", "/api/recordings"),
    ("GET", "/api/recordings"),
    ("GET", "/api/recordings/{recordingId}/archive/manifest"),
    ("GET", "/api/recordings/{recordingId}/archive/files/{fileName}"),
    ("GET", "/api/recordings/{recordingId}"),
    ("DELETE", "/api/recordings/{recordingId}"),
    ("POST", "/api/recordings/{recordingId}/pause"),
    ("POST", "/api/recordings/{recordingId}/resume"),
    ("POST", "/api/callbacks"),
]


def test_operations_are_all_covered(api_schema: Any) -> None:
    listed = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_matches_the_document_and_none_is_5xx(
    api_schema: Any, api: ApiServer, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        headers = {} if "x-functions-key" in (case.headers or {}) else {"x-functions-key": KEY}
        case.call_and_validate(base_url=api.base_url, headers=headers, checks=CHECKS, timeout=30)

    check()


KEY = FUNCTION_KEY
