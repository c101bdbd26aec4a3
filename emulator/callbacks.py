"""Call Automation callbacks: ``RecordingStateChanged`` CloudEvents, signed like ACS signs them.

ACS posts an array of CloudEvents to ``recordingStateCallbackUri`` with ``Authorization: Bearer
<JWT>``; the JWT is RS256, its audience is the ACS resource's immutable id, it lives five
minutes, and its keys are published through OIDC metadata and a JWKS document. The emulator
generates an RSA key at start and serves both documents in the same shape on its own endpoint,
so a receiver validates emulator callbacks with the same code it uses in Azure, pointed at the
emulator's metadata URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from emulator.clock import iso8601
from emulator.constants import (
    CALLBACK_TOKEN_LIFETIME_SECONDS,
    CALLBACK_TYPE_STATE_CHANGED,
    JWKS_PATH,
    RECORDING_KIND,
)
from emulator.models import Call, Recording

LOG = logging.getLogger(__name__)


class CallbackSigner:
    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key_id = uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def openid_configuration(self) -> dict:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}{JWKS_PATH}",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "aud", "iat", "nbf", "exp"],
        }

    def jwks(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.key_id, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def token(self, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + CALLBACK_TOKEN_LIFETIME_SECONDS,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})


def recording_state_changed(call: Call, recording: Recording, *, source: str, now: float) -> dict:
    state = "inactive" if recording.stopped else recording.state
    return {
        "id": str(uuid.uuid4()),
        "source": source,
        "type": CALLBACK_TYPE_STATE_CHANGED,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": iso8601(now),
        "subject": f"calling/recordings/{recording.recording_id}",
        "data": {
            "recordingId": recording.recording_id,
            "state": state,
            "startDateTime": iso8601(recording.started_at),
            "recordingKind": RECORDING_KIND,
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "correlationId": call.call_id,
            "version": "2026-03-12",
            "publicEventType": CALLBACK_TYPE_STATE_CHANGED,
        },
    }


class CallbackSender:
    def __init__(self, signer: CallbackSigner) -> None:
        self.signer = signer
        self.sent: list[dict] = []
        # One callback at a time, in the order the state changes happened (asyncio.Lock is FIFO).
        self._in_order = asyncio.Lock()

    async def send(self, url: str, event: dict) -> None:
        async with self._in_order:
            await self._post(url, event)

    async def _post(self, url: str, event: dict) -> None:
        self.sent.append(event)
        headers = {"Authorization": f"Bearer {self.signer.token()}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, json=[event], headers=headers) as response,
            ):
                if response.status >= 300:
                    LOG.warning("callback to %s answered %s", url, response.status)
        except aiohttp.ClientError as exc:
            LOG.warning("callback to %s failed: %s", url, exc)
