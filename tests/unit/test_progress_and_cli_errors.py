"""Small output rules a person sees: progress in a log file, and one clean sentence per error."""

from __future__ import annotations

import io

import httpx
import pytest

from local_runtime.demo import Progress
from recordings_cli.client import EXIT_UNREACHABLE, CliError, RecordingsClient


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(progress: Progress) -> None:
    for status in ("0/2 done", "0/2 done", "1/2 done", "2/2 done"):
        progress.show(status)
    progress.end()


def test_progress_in_a_log_is_one_plain_line_per_change() -> None:
    log = io.StringIO()
    _run(Progress("waiting for the archiver", log))
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [
        "  waiting for the archiver: 0/2 done",
        "  waiting for the archiver: 1/2 done",
        "  waiting for the archiver: 2/2 done",
    ]


def test_progress_on_a_terminal_is_rewritten_in_place() -> None:
    terminal = _Terminal()
    _run(Progress("waiting for the archiver", terminal))
    assert terminal.getvalue().count("\r") == 3
    assert terminal.getvalue().endswith("2/2 done\n")


def test_a_transport_error_ending_in_a_period_gives_one_period() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Request URL is missing a protocol.", request=request)

    client = RecordingsClient("http://127.0.0.1:7071", "key", transport=httpx.MockTransport(refuse))
    with pytest.raises(CliError) as caught:
        client.list_page({})
    assert caught.value.exit_code == EXIT_UNREACHABLE
    assert "missing a protocol. Is it running?" in str(caught.value)
    assert ".." not in str(caught.value)
