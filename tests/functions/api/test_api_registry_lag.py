"""The API when its registry lags behind ACS: writes that land after the answer, a write lost in
a crash, a recording another instance started. ACS decides before the API refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from azure.data.tables import TableClient

from local_runtime.processes import Azurite
from recording_pipeline.api.dependencies import ApiServices
from recording_pipeline.ids import encode_id
from tests.functions.api.test_api_recordings import new_call, start_body
from tests.functions.stack import ApiServer
from tests.support.emulator import RunningEmulator


def services_of(api: ApiServer) -> ApiServices:
    services = api.app.state.services
    assert isinstance(services, ApiServices)
    return services


def location_of(recording_id: str) -> str:
    return f"/api/recordings/{quote(recording_id, safe='')}"


def start_at_acs(emulator: RunningEmulator) -> str:
    """A recording the API never saw (started by another instance, or its write was lost)."""
    call = new_call(emulator)
    with emulator.sdk_client(retry_total=0) as sdk:
        properties = sdk.start_recording(
            server_call_id=call["serverCallId"],
            recording_content_type="audio",
            recording_channel_type="mixed",
            recording_format_type="wav",
        )
    return str(properties.recording_id)


@pytest.fixture
def stored_state(api: ApiServer, azurite: Azurite, registry_table: str) -> Callable[[str], Any]:
    """The ``State`` the table holds for a recording once the API's writes have landed."""

    def state(recording_id: str) -> Any:
        assert services_of(api).writes.flush(10)
        client = TableClient.from_connection_string(azurite.connection_string, registry_table)
        return client.get_entity(encode_id(recording_id), "recording").get("State")

    return state


def test_a_pause_is_shown_at_once_and_then_lands_in_the_table(
    client: httpx.Client, api: ApiServer, module_emulator: RunningEmulator
) -> None:
    started = client.post("/api/recordings", json=start_body(new_call(module_emulator)))
    location = started.json()["location"]
    assert client.post(f"{location}/pause").json()["state"] == "inactive"
    # Read at once, whether or not the writes have landed: the API shows its own changes.
    view = client.get(location).json()
    assert view["registry"]["state"] == "inactive"
    assert [e["state"] for e in view["registry"]["stateHistory"] if e["source"] == "api"] == [
        "active",
        "inactive",
    ]
    assert services_of(api).writes.flush(10)
    assert client.get(location).json()["registry"]["state"] == "inactive"


def test_a_registry_behind_acs_does_not_refuse_what_acs_allows(
    client: httpx.Client, module_emulator: RunningEmulator, stored_state: Callable[[str], Any]
) -> None:
    """The registry says active (a pause written by nobody), ACS says inactive: resume works."""
    location = client.post("/api/recordings", json=start_body(new_call(module_emulator))).json()[
        "location"
    ]
    recording_id = client.get(location).json()["recordingId"]
    assert stored_state(recording_id) == "active"
    with module_emulator.sdk_client(retry_total=0) as sdk:
        sdk.pause_recording(recording_id)  # behind the API's back

    resumed = client.post(f"{location}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active"
    # Resuming again is still refused: ACS agrees with the registry that it is active now.
    refused = client.post(f"{location}/resume")
    assert refused.status_code == 409
    assert "'active'" in refused.json()["detail"]
    assert stored_state(recording_id) == "active"


def test_a_recording_only_acs_knows_can_be_paused_and_is_then_registered(
    client: httpx.Client, module_emulator: RunningEmulator, stored_state: Callable[[str], Any]
) -> None:
    recording_id = start_at_acs(module_emulator)
    paused = client.post(f"{location_of(recording_id)}/pause")
    assert paused.status_code == 200, paused.text
    assert stored_state(recording_id) == "inactive"
    assert client.get(location_of(recording_id)).json()["registry"]["state"] == "inactive"


def test_a_recording_nobody_knows_is_still_404(client: httpx.Client) -> None:
    response = client.post(f"{location_of('bm8tc3VjaC1yZWNvcmRpbmc=')}/pause")
    assert response.status_code == 404
    assert response.json()["field"] == "recordingId"
