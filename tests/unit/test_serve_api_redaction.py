"""The local server's access log never shows a function key passed as ``?code=``."""

from __future__ import annotations

import logging

from local_runtime.api_server import RedactFunctionKey


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


def test_code_in_the_query_is_redacted() -> None:
    record = _access_record("/api/recordings/x?code=s3cr3t-key&limit=5")
    assert RedactFunctionKey().filter(record)
    message = record.getMessage()
    assert "s3cr3t-key" not in message
    assert "?code=***&limit=5" in message


def test_other_paths_are_left_alone() -> None:
    record = _access_record("/api/recordings?barcode=1&state=active")
    RedactFunctionKey().filter(record)
    assert "/api/recordings?barcode=1&state=active" in record.getMessage()
