"""A source that ignores Range must state its size, or nothing is archived from it.

An unknown size taken as zero would commit an empty blob as the whole chunk, write the manifest
and delete the recording from ACS; these cases are refused instead (the host then redelivers).
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from recording_pipeline.archive.media_source import (
    MediaSource,
    RetrySchedule,
    SourceUnavailableError,
)
from recording_pipeline.clients import call_automation_client
from recording_pipeline.settings import Settings
from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING
from tests.support.http_server import LocalHttpServer

URL = "https://emulator.asm.skype.com/v1/objects/doc/content/audio"
BODY = b"RIFF-whole-object-without-range"


def _handler(content_length: str | None) -> type[BaseHTTPRequestHandler]:
    class IgnoresRange(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # without Content-Length the body ends at close

        def do_GET(self) -> None:
            self.send_response(200)
            if content_length is not None:
                self.send_header("Content-Length", content_length)
            self.end_headers()
            self.wfile.write(BODY if content_length != "0" else b"")

        def log_message(self, *args: object) -> None:
            return

    return IgnoresRange


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[LocalHttpServer] = []

    def start(content_length: str | None) -> MediaSource:
        server = LocalHttpServer(_handler(content_length))
        servers.append(server)
        base = server.base_url
        settings = Settings.from_env(
            {
                "ACS_ENDPOINT": base,
                "ACS_ACCESS_KEY": "a2V5",
                "ACS_RESOURCE_ID": (
                    "/subscriptions/0/resourceGroups/g/providers/"
                    "Microsoft.Communication/communicationServices/acs"
                ),
                "ACS_IMMUTABLE_RESOURCE_ID": "id",
                "ACS_MEDIA_ENDPOINT_OVERRIDE": base,
                "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
            }
        )
        client = call_automation_client(settings, retry_total=0)
        return MediaSource(client, URL, retry=RetrySchedule(max_failures=1, base_delay_seconds=0))

    yield start
    for server in servers:
        server.stop()


def test_a_stated_size_is_used(serve) -> None:
    source = serve(str(len(BODY)))
    assert bytes(source.read_range(0, 1024)) == BODY
    assert source.total_size == len(BODY)


@pytest.mark.parametrize("content_length", [None, "0"])
def test_an_unknown_or_zero_size_is_refused(serve, content_length: str | None) -> None:
    source = serve(content_length)
    with pytest.raises(SourceUnavailableError, match="200 to a Range request"):
        source.read_range(0, 1024)
    assert source.total_size is None
