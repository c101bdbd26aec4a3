"""The media-host override can only send ACS media requests (and their credentials) to loopback."""

from __future__ import annotations

import pytest

from recording_pipeline.settings import Settings, SettingsError

BASE = {
    "ACS_ENDPOINT": "https://acs.communication.azure.com",
    "ACS_RESOURCE_ID": (
        "/subscriptions/0/resourceGroups/rg/providers/"
        "Microsoft.Communication/communicationServices/acs"
    ),
    "ACS_IMMUTABLE_RESOURCE_ID": "11111111-2222-3333-4444-555555555555",
    "ARCHIVE_ACCOUNT_NAME": "archive1",
}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8999", "http://localhost:1"])
def test_loopback_override_is_accepted(url: str) -> None:
    settings = Settings.from_env({**BASE, "ACS_MEDIA_ENDPOINT_OVERRIDE": url})
    assert settings.acs_media_endpoint_override == url


@pytest.mark.parametrize("url", ["https://collector.example.com", "https://10.0.0.5"])
def test_override_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match=r"ACS_MEDIA_ENDPOINT_OVERRIDE .* must point at 127"):
        Settings.from_env({**BASE, "ACS_MEDIA_ENDPOINT_OVERRIDE": url})
