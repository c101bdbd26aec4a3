"""HMAC: requests signed by the SDK's own policy pass; any change after signing is a 401."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from email.utils import formatdate

import azure.communication.callautomation._shared.policy as policy_module
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from emulator.client import emulator_call_automation_client
from tests.emulator.helpers import record
from tests.support.emulator import RunningEmulator

API = "api-version=2026-03-12"


def signed(emulator: RunningEmulator, method: str, url: str, body: str = "", key: str = "") -> dict:
    """Headers the SDK's HMAC policy puts on this request."""
    policy = policy_module.HMACCredentialsPolicy(emulator.endpoint, key or emulator.access_key)
    request = HttpRequest(method, url, content=body or None)
    request.body = body
    policy.on_request(PipelineRequest(request, PipelineContext(None)))
    return dict(request.headers)


def _start_body(server_call_id: str) -> str:
    return json.dumps(
        {"callLocator": {"kind": "serverCallLocator", "serverCallId": server_call_id}}
    )


def _assert_acs_401(response: requests.Response, phrase: str) -> None:
    assert response.status_code == 401
    assert response.headers["x-ms-error-code"] == "Unauthorized"
    assert response.headers["x-ms-request-id"]
    assert phrase in response.json()["error"]["message"]


def test_correctly_signed_request_is_accepted(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call(["8:acs:a"])
    url = f"{emulator.endpoint}/calling/recordings?{API}"
    body = _start_body(call["serverCallId"])
    response = requests.post(
        url, data=body, headers=signed(emulator, "POST", url, body), timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["recordingState"] == "active"


def test_wrong_key_is_rejected_through_the_sdk(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call(["8:acs:a"])
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    client = emulator_call_automation_client(emulator.endpoint, other_key, retry_total=0)
    with client, pytest.raises(ClientAuthenticationError) as raised:
        client.start_recording(server_call_id=call["serverCallId"])
    assert raised.value.status_code == 401
    assert raised.value.response.headers["x-ms-error-code"] == "Unauthorized"
    assert "signature does not match" in raised.value.response.text()


def test_media_download_with_wrong_key_is_rejected(emulator: RunningEmulator) -> None:
    _, _, event = record(
        emulator, ["8:acs:a"], 1, recording_content_type="audio", recording_format_type="wav"
    )
    url = event["data"]["recordingStorageInfo"]["recordingChunks"][0]["contentLocation"]
    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    client = emulator_call_automation_client(emulator.endpoint, other_key, retry_total=0)
    with client, pytest.raises(ClientAuthenticationError):
        client.download_recording(url)


def test_stale_date_is_rejected(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call(["8:acs:a"])
    url = f"{emulator.endpoint}/calling/recordings?{API}"
    body = _start_body(call["serverCallId"])
    stale = formatdate(timeval=time.time() - 3600, usegmt=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(policy_module, "get_current_utc_time", lambda: stale)
        headers = signed(emulator, "POST", url, body)
    response = requests.post(url, data=body, headers=headers, timeout=10)
    _assert_acs_401(response, "x-ms-date")


def test_tampered_body_is_rejected(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call(["8:acs:a"])
    url = f"{emulator.endpoint}/calling/recordings?{API}"
    body = _start_body(call["serverCallId"])
    headers = signed(emulator, "POST", url, body)
    tampered = body.replace("serverCallLocator", "serverCallLocator ")
    response = requests.post(url, data=tampered, headers=headers, timeout=10)
    _assert_acs_401(response, "x-ms-content-sha256")


def test_tampered_body_with_matching_hash_is_rejected(emulator: RunningEmulator) -> None:
    """Recomputing the body hash without the key still breaks the signature."""
    call = emulator.simulation.create_call(["8:acs:a"])
    url = f"{emulator.endpoint}/calling/recordings?{API}"
    body = _start_body(call["serverCallId"])
    headers = signed(emulator, "POST", url, body)
    other = _start_body(call["serverCallId"] + "x")
    headers["x-ms-content-sha256"] = base64.b64encode(
        hashlib.sha256(other.encode()).digest()
    ).decode()
    response = requests.post(url, data=other, headers=headers, timeout=10)
    _assert_acs_401(response, "signature does not match")


def test_tampered_path_is_rejected(emulator: RunningEmulator) -> None:
    call = emulator.simulation.create_call(["8:acs:a"])
    with emulator.sdk_client() as client:
        recording_id = client.start_recording(server_call_id=call["serverCallId"]).recording_id
    signed_url = f"{emulator.endpoint}/calling/recordings/{recording_id}:pause?{API}"
    headers = signed(emulator, "POST", signed_url)
    sent_url = f"{emulator.endpoint}/calling/recordings/{recording_id}:resume?{API}"
    response = requests.post(sent_url, headers=headers, timeout=10)
    _assert_acs_401(response, "signature does not match")


def test_missing_authorization_is_rejected(emulator: RunningEmulator) -> None:
    response = requests.get(f"{emulator.endpoint}/calling/recordings/abc?{API}", timeout=10)
    _assert_acs_401(response, "Authorization")
