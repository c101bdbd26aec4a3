"""The local server's access log never shows a credential passed in the query: a function key
(``?code=``) or an access token (``?access_token=``, which the API refuses after uvicorn has
logged the request line)."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local_runtime.api_server import RedactQuerySecrets


def _access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def _logged(path: str) -> str:
    record = _access_record(path)
    assert RedactQuerySecrets().filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    ("path", "redacted"),
    [
        ("/api/recordings/x?code=s3cr3t-key&limit=5", "/api/recordings/x?code=***&limit=5"),
        ("/api/recordings?access_token=s3cr3t-key", "/api/recordings?access_token=***"),
        ("/api/recordings?limit=5&access_token=s3cr3t-key", "?limit=5&access_token=***"),
        ("/api/recordings?access%5Ftoken=s3cr3t-key", "?access%5Ftoken=***"),
        ("/api/recordings?Access_Token=s3cr3t-key&code=s3cr3t-key", "?Access_Token=***&code=***"),
    ],
    ids=["code", "access-token", "access-token-after-another", "encoded-name", "both"],
)
def test_credentials_in_the_query_are_redacted(path: str, redacted: str) -> None:
    message = _logged(path)
    assert "s3cr3t-key" not in message
    assert redacted in message


def test_other_paths_are_left_alone() -> None:
    for path in ("/api/recordings?barcode=1&state=active", "/api/recordings?my_access_token=1"):
        assert path in _logged(path)


SECRET = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&#"),
    min_size=1,
    max_size=60,
).map(lambda text: f"SECRET{text}")  # (a marker nothing else in the line holds)


@settings(max_examples=200, derandomize=True, database=None)
@given(
    secret=SECRET,
    name=st.sampled_from(["code", "access_token", "ACCESS_TOKEN", quote("access_token", safe="")]),
    before=st.lists(st.sampled_from(["limit=5", "state=active", "x"]), max_size=3),
    after=st.lists(st.sampled_from(["limit=5", "state=active", "x"]), max_size=3),
)
def test_no_credential_in_the_query_reaches_the_log(
    secret: str, name: str, before: list[str], after: list[str]
) -> None:
    query = "&".join([*before, f"{name}={secret}", *after])
    message = _logged(f"/api/recordings?{query}")
    assert secret not in message
    assert f"{name}=***" in message
