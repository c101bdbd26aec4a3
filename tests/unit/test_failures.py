"""How an archive failure is written down and read back: outages retry, refusals do not."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from hypothesis import given
from hypothesis import strategies as st

from recording_pipeline.archive.media_source import SourceUnavailableError
from recording_pipeline.failures import TRANSIENT_STATUSES, classify, describe


def http_error(status: int, message: str = "refused") -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = status
    return error


@given(status=st.integers(100, 599), message=st.text(max_size=200))
def test_an_http_failure_is_transient_exactly_for_outage_statuses(
    status: int, message: str
) -> None:
    written = describe(http_error(status, message))

    assert written.startswith(f"HttpResponseError (HTTP {status}): ")
    assert classify(written) == ("transient" if status in TRANSIENT_STATUSES else "permanent")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SourceUnavailableError("6 failures in a row"), "transient"),
        (ServiceRequestError("connection refused"), "transient"),
        (TimeoutError("read timed out"), "transient"),
        (ConnectionResetError("reset by peer"), "transient"),
        (ClientAuthenticationError(message="no role"), "permanent"),
        (ResourceNotFoundError(message="container gone"), "permanent"),
        (ValueError("a bug"), "permanent"),
        (RuntimeError("registry row kept changing"), "permanent"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_exception_types_are_classified(error: BaseException, expected: str) -> None:
    assert classify(describe(error)) == expected


@given(text=st.text(max_size=300))
def test_anything_unreadable_is_for_a_person(text: str) -> None:
    """Only the shape describe() writes can be transient; never a free text that mentions it."""
    assert classify("Note: " + text) == "permanent"
    assert classify(f"SourceUnavailableError - {text}") == "permanent"
