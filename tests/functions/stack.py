"""Real local services for the API tests: the API under uvicorn, a local OIDC issuer.

The API runs in a thread of the test process (so a test can inject a transport or read the
app's state) but is reached only over real HTTP on a free 127.0.0.1 port, as a client would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from local_runtime.processes import Azurite, free_port
from local_runtime.token_issuer import LOCAL_API_ROLE, TokenIssuer
from recording_pipeline.api.app import create_app
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.settings import Settings
from tests.support.emulator import RunningEmulator

FUNCTION_KEY = "local-test-function-key-" + "x" * 8


def unique_table_name(prefix: str = "rec") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def stack_environment(
    emulator: RunningEmulator,
    azurite: Azurite,
    *,
    table: str,
    oidc_metadata_url: str | None = None,
    function_key: str = FUNCTION_KEY,
) -> dict[str, str]:
    """The environment ``scripts/serve_api.py`` would get for this emulator and Azurite."""
    return {
        "ACS_ENDPOINT": emulator.endpoint,
        "ACS_RESOURCE_ID": emulator.resource_id,
        "ACS_IMMUTABLE_RESOURCE_ID": emulator.immutable_resource_id,
        "ACS_ACCESS_KEY": emulator.access_key,
        "ACS_MEDIA_ENDPOINT_OVERRIDE": emulator.media_override_base_url,
        "CALLBACK_OIDC_METADATA_URL": oidc_metadata_url or emulator.oidc_metadata_url,
        "ARCHIVE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "REGISTRY_TABLE": table,
        "LOCAL_FUNCTION_KEY": function_key,
    }


def entra_environment(
    issuer: TokenIssuer,
    mode: str = "entraId",
    *,
    audiences: tuple[str, ...] | None = None,
    allowed_client_ids: tuple[str, ...] = (),
    required_role: str = LOCAL_API_ROLE,
) -> dict[str, str]:
    """The ``API_*`` settings that make the API take ``issuer``'s tokens (both audience forms
    unless ``audiences`` says otherwise; the role the issuer's tokens carry unless
    ``required_role`` says otherwise: a token mode requires a role or client ids)."""
    return {
        "API_AUTH": mode,
        "API_TENANT_ID": issuer.tenant_id,
        "API_AUDIENCE": ",".join(audiences or (issuer.api_app_id_uri, issuer.api_client_id)),
        "API_ALLOWED_CLIENT_IDS": ",".join(allowed_client_ids),
        "API_REQUIRED_ROLE": required_role,
        "API_OIDC_METADATA_URL": issuer.metadata_url,
    }


@dataclass
class ApiServer:
    """``create_app()`` served by uvicorn in a daemon thread on a free port."""

    app: FastAPI
    host: str = "127.0.0.1"
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ApiServer:
        self.port = self.port or free_port(self.host)
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


def start_api(environ: Mapping[str, str], **create_app_kwargs: Any) -> ApiServer:
    return ApiServer(create_app(Settings.from_env(environ), **create_app_kwargs)).start()


@dataclass
class OidcIssuer(TokenIssuer):
    """A local OpenID provider shaped as ACS's callback issuer: metadata at
    ``/calling/.well-known/acsopenidconfiguration``, the issuer its base URL, tokens with the ACS
    resource's immutable id as audience (the server and keys are the local token issuer's).

    ``rotate()`` publishes a new key (new ``kid``), as ACS does when it rotates keys.
    """

    audience: str = ""

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/calling/.well-known/acsopenidconfiguration"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/keys"

    def token(
        self,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime: int = 300,
        issued_at: float | None = None,
        key: Any = None,
        kid: str | None = None,
    ) -> str:
        """A token like ACS's; every argument lets a test break exactly one property."""
        issued = int(time.time() if issued_at is None else issued_at)
        claims = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": self.audience if audience is None else audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
        }
        return self.sign(claims, key=key, kid=kid)


def state_changed_event(
    recording_id: str,
    state: str,
    *,
    event_id: str | None = None,
    server_call_id: str = "server-call",
    correlation_id: str = "5c8f3a9e-0d1b-4e2f-9a7c-6b5d4e3f2a1b",
    at: str | None = None,
) -> dict[str, Any]:
    """A RecordingStateChanged CloudEvent shaped as ACS sends it (``at``: now, in the registry's
    format, unless given)."""
    at = at or iso(utc_now())
    return {
        "id": event_id or str(uuid.uuid4()),
        "source": "calling/recordings",
        "type": "Microsoft.Communication.RecordingStateChanged",
        "specversion": "1.0",
        "time": at,
        "data": {
            "recordingId": recording_id,
            "state": state,
            "startDateTime": at,
            "recordingKind": "azureCommunicationServices",
            "serverCallId": server_call_id,
            "callConnectionId": "connection",
            "correlationId": correlation_id,
        },
    }


def acs_recording(emulator: RunningEmulator) -> str:
    """A recording ACS (the emulator) knows and this API never started: callbacks about it are
    recorded because ACS confirms it."""
    call = emulator.simulation.create_call(["8:acs:callback-test"])
    with emulator.sdk_client() as client:
        return str(client.start_recording(server_call_id=call["serverCallId"]).recording_id)
