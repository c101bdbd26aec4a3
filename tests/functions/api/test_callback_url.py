"""Which recordingStateCallbackUri the API sends ACS (seen on the wire by an injected transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from local_runtime.processes import Azurite
from tests.functions.api.test_recording_service import STARTED, WireTransport, answer
from tests.functions.stack import FUNCTION_KEY, stack_environment, start_api, unique_table_name
from tests.support.emulator import RunningEmulator


@pytest.mark.parametrize(
    ("public_base_url", "requested", "expected"),
    [
        (None, None, "{api}/api/callbacks"),
        (
            "https://rec-app.azurewebsites.net",
            None,
            "https://rec-app.azurewebsites.net/api/callbacks",
        ),
        (
            "https://rec-app.azurewebsites.net",
            "https://backend.example/acs",
            "https://backend.example/acs",
        ),
    ],
    ids=["request-base", "platform-host", "client-url"],
)
def test_callback_uri_sent_to_acs(
    module_emulator: RunningEmulator,
    azurite: Azurite,
    public_base_url: str | None,
    requested: str | None,
    expected: str,
) -> None:
    transport = WireTransport(answer(200, STARTED))
    server = start_api(
        stack_environment(module_emulator, azurite, table=unique_table_name()),
        transport=transport,
        public_base_url=public_base_url,
    )
    try:
        body = {"serverCallId": "c2VydmVy"}
        if requested is not None:
            body["recordingStateCallbackUrl"] = requested
        with httpx.Client(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}
        ) as http:
            assert http.post("/api/recordings", json=body).status_code == 201
        sent = json.loads(transport.requests[-1].content)
        assert sent["recordingStateCallbackUri"] == expected.format(api=server.base_url)
    finally:
        server.stop()
