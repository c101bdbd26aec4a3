"""The media-host override reaches a local server only for ACS media URLs, after SDK validation."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from recording_pipeline.clients import MediaHostOverridePolicy, call_automation_client
from recording_pipeline.settings import Settings
from tests.support.azurite import UNUSED_STORAGE_CONNECTION_STRING
from tests.support.http_server import LocalHttpServer

RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.Communication/communicationServices/acs"
)


class _RecordingHandler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, dict(self.headers)))
        body = b"media-bytes"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def media_server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []
    handler = type("Handler", (_RecordingHandler,), {"seen": seen})
    with LocalHttpServer(handler) as server:
        yield server.base_url, seen


def _settings(endpoint: str, override: str | None) -> Settings:
    env = {
        "ACS_ENDPOINT": endpoint,
        "ACS_ACCESS_KEY": "c2VjcmV0LWtleS1mb3ItdGVzdHM=",
        "ACS_RESOURCE_ID": RESOURCE_ID,
        "ACS_IMMUTABLE_RESOURCE_ID": "11111111-2222-3333-4444-555555555555",
        "ARCHIVE_STORAGE_CONNECTION_STRING": UNUSED_STORAGE_CONNECTION_STRING,
    }
    if override:
        env["ACS_MEDIA_ENDPOINT_OVERRIDE"] = override
    return Settings.from_env(env)


def test_media_download_is_routed_to_the_override_with_hmac(media_server) -> None:
    base_url, seen = media_server
    client = call_automation_client(_settings(base_url, base_url), retry_total=0)
    url = "https://us-storage.asm.skype.com/v1/objects/doc-1/content/audio"

    body = b"".join(client.download_recording(url, offset=2, length=3).iter_bytes())

    assert body == b"media-bytes"
    method, path, headers = seen[-1]
    assert (method, path) == ("GET", "/v1/objects/doc-1/content/audio")
    assert headers["Range"] == "bytes=2-4"
    assert headers["x-ms-host"] == "127.0.0.1"
    assert headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=x-ms-date;host;")


def test_sdk_validation_still_refuses_foreign_hosts_with_the_override(media_server) -> None:
    base_url, seen = media_server
    client = call_automation_client(_settings(base_url, base_url), retry_total=0)

    with pytest.raises(ValueError, match="not a valid Azure Communication Services"):
        client.download_recording("https://attacker.example/v1/objects/x")
    assert seen == []


def test_policy_leaves_non_media_hosts_alone() -> None:
    class _Request:
        def __init__(self, url: str) -> None:
            self.http_request = type("R", (), {"url": url})()

    policy = MediaHostOverridePolicy("http://127.0.0.1:1234")
    other = _Request("https://acs.communication.azure.com/calling/recordings?api-version=1")
    media = _Request("https://x.asm.skype.com/v1/objects/d?a=1")
    policy.on_request(other)  # type: ignore[arg-type]
    policy.on_request(media)  # type: ignore[arg-type]
    assert other.http_request.url.startswith("https://acs.communication.azure.com/")
    assert media.http_request.url == "http://127.0.0.1:1234/v1/objects/d?a=1"


def test_override_must_be_an_absolute_url() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        MediaHostOverridePolicy("127.0.0.1:1234")
