"""Media storage: whole and ranged reads, HEAD, delete, and expiry after the retention time."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from emulator.client import media_host_override_policy
from tests.emulator.helpers import download, record
from tests.emulator.test_auth import signed
from tests.support.emulator import RunningEmulator, start_emulator


def _first_chunk(event: dict) -> dict:
    return event["data"]["recordingStorageInfo"]["recordingChunks"][0]


def _local(emulator: RunningEmulator, media_url: str) -> str:
    """The URL the override policy sends a media request to."""
    return media_url.replace(media_url.split("/v1/")[0], emulator.media_override_base_url)


def test_range_reads_return_206_with_content_range(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 2, recording_content_type="audio", recording_format_type="wav"
    )
    url = _first_chunk(event)["contentLocation"]
    with emulator.sdk_client() as client:
        whole = client.download_recording(url)
        body = whole.read()
        part = client.download_recording(url, offset=1000, length=500)
        tail = client.download_recording(url, offset=len(body) - 10)
    assert whole.status_code == 200
    assert len(body) == 44 + 2 * 16_000 * 2
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1499/{len(body)}"
    assert part.read() == body[1000:1500]
    assert tail.read() == body[-10:]


def test_unsatisfiable_range_is_416(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 1, recording_content_type="audio", recording_format_type="wav"
    )
    url = _first_chunk(event)["contentLocation"]
    with emulator.sdk_client() as client:
        size = len(download(client, url))
        with pytest.raises(HttpResponseError) as raised:
            client.download_recording(url, offset=size + 10, length=5)
    assert raised.value.status_code == 416
    assert raised.value.response.headers["Content-Range"] == f"bytes */{size}"


def test_suffix_range_and_head(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 1, recording_content_type="audio", recording_format_type="wav"
    )
    local = _local(emulator, _first_chunk(event)["contentLocation"])
    suffix = requests.get(
        local, headers={**signed(emulator, "GET", local), "Range": "bytes=-4"}, timeout=10
    )
    head = requests.head(local, headers=signed(emulator, "HEAD", local), timeout=10)
    assert suffix.status_code == 206
    assert len(suffix.content) == 4
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(44 + 16_000 * 2)
    assert head.content == b""


def test_delete_answers_200_then_404(emulator: RunningEmulator) -> None:
    _, recording_id, event = record(emulator, ["8:acs:a"], 1)
    chunk = _first_chunk(event)
    with emulator.sdk_client() as client:
        client.delete_recording(chunk["deleteLocation"])
        with pytest.raises(ResourceNotFoundError):
            client.download_recording(chunk["contentLocation"])
        with pytest.raises(ResourceNotFoundError):
            client.download_recording(chunk["metadataLocation"])
        with pytest.raises(ResourceNotFoundError):
            client.delete_recording(chunk["deleteLocation"])
    (listed,) = emulator.simulation.objects()["objects"]
    assert (listed["recordingId"], listed["status"], listed["contentBytes"]) == (
        recording_id,
        "deleted",
        None,
    )


def test_media_expires_after_retention(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path, extra_args=["--retention", "1h"])
    try:
        _, _, event = record(emulator, ["8:acs:a"], 1)
        url = _first_chunk(event)["contentLocation"]
        with emulator.sdk_client() as client:
            emulator.simulation.advance_clock(3599)
            assert len(download(client, url)) > 0
            emulator.simulation.advance_clock(2)
            with pytest.raises(ResourceNotFoundError):
                client.download_recording(url)
        (listed,) = emulator.simulation.objects()["objects"]
    finally:
        emulator.stop()
    assert listed["status"] == "expired"


def test_override_policy_leaves_other_hosts_and_validation_alone(emulator: RunningEmulator) -> None:
    with emulator.sdk_client() as client, pytest.raises(ValueError, match="not a valid"):
        client.download_recording(
            f"{emulator.endpoint}/v1/objects/x/content/audio".replace("http://", "https://")
        )
    with pytest.raises(ValueError, match="absolute http"):
        media_host_override_policy("127.0.0.1:80")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://westeurope.asm.skype.com/v1/objects/0-x/content/audio?a=1",
            "http://127.0.0.1:9/v1/objects/0-x/content/audio?a=1",
        ),
        ("https://api.example.com/v1/objects/0-x", "https://api.example.com/v1/objects/0-x"),
        (
            "http://westeurope.asm.skype.com/v1/objects/0-x",
            "http://westeurope.asm.skype.com/v1/objects/0-x",
        ),
        ("https://evil-asm.skype.com.example.org/x", "https://evil-asm.skype.com.example.org/x"),
    ],
)
def test_override_policy_rewrites_only_https_acs_media_hosts(url: str, expected: str) -> None:
    request = PipelineRequest(HttpRequest("GET", url), PipelineContext(None))
    media_host_override_policy("http://127.0.0.1:9").on_request(request)
    assert request.http_request.url == expected
