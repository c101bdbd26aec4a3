"""The archiver and the SDK override agree on which hosts may serve ACS media."""

from __future__ import annotations

import pytest

from recording_pipeline.hosts import is_acs_media_url


@pytest.mark.parametrize(
    "url",
    [
        "https://us-storage.asm.skype.com/v1/objects/0-eus-d1/content/audio",
        "https://weu.asyncgw.teams.microsoft.com/v1/objects/x",
        "https://gov.ams.gov.teams.microsoft.us/v1/objects/x",
        "https://US-STORAGE.ASM.SKYPE.COM:443/v1/objects/x",
    ],
)
def test_acs_media_urls_are_allowed(url: str) -> None:
    assert is_acs_media_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://us-storage.asm.skype.com/v1/objects/x",  # not https
        "https://asm.skype.com.evil.example/v1/objects/x",  # suffix trick
        "https://evilasm.skype.com/v1/objects/x",  # no dot before the suffix
        "https://user:pw@us-storage.asm.skype.com/v1/objects/x",  # credentials
        "https://us-storage.asm.skype.com:8443/v1/objects/x",  # odd port
        "https://127.0.0.1/v1/objects/x",
        "/v1/objects/x",
        "",
        "https://us-storage.asm.skype.com:99999/v1/objects/x",  # port out of range
        "https://us-storage.asm.skype.com:abc/v1/objects/x",  # port not a number
        "https://[us-storage.asm.skype.com/v1/objects/x",  # broken IPv6 literal
        "https://us-storage.asm.skype.com/v1/objects/\u00e9",  # non-ASCII
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    assert not is_acs_media_url(url)
