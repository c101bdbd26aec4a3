"""Fixtures of the API tests: one emulator and one API per module, Azurite per session.

Tests isolate themselves by creating their own calls (the emulator gives every call fresh ids)
and, where they need an empty registry, their own table.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from azure.data.tables import TableClient

from local_runtime.processes import Azurite
from recording_pipeline.api.callbacks import CallbackTokenVerifier
from tests.functions.stack import (
    FUNCTION_KEY,
    ApiServer,
    OidcIssuer,
    stack_environment,
    start_api,
    unique_table_name,
)
from tests.support.emulator import RunningEmulator, start_emulator


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A real emulator (manual clock) shared by the tests of one module."""
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def registry_table() -> str:
    return unique_table_name()


@pytest.fixture(scope="module")
def stack_env(module_emulator: RunningEmulator, azurite: Azurite, registry_table: str) -> dict:
    return stack_environment(module_emulator, azurite, table=registry_table)


@pytest.fixture(scope="module")
def api(stack_env: dict) -> Iterator[ApiServer]:
    """The API on a free port, against the module's emulator and the session's Azurite."""
    server = start_api(stack_env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(api: ApiServer) -> Iterator[httpx.Client]:
    """An HTTP client that sends the function key, as an app backend would."""
    with httpx.Client(
        base_url=api.base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30
    ) as http:
        yield http


@pytest.fixture
def anonymous_client(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def issuer(module_emulator: RunningEmulator) -> Iterator[OidcIssuer]:
    """A local OIDC issuer whose tokens the callback API accepts (as ACS's)."""
    running = OidcIssuer(audience=module_emulator.immutable_resource_id).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def callback_table() -> str:
    return unique_table_name()


@pytest.fixture(scope="module")
def callback_api(
    module_emulator: RunningEmulator, azurite: Azurite, issuer: OidcIssuer, callback_table: str
) -> Iterator[ApiServer]:
    """The API trusting ``issuer``'s callback tokens, with its own registry table."""
    environ = stack_environment(
        module_emulator, azurite, table=callback_table, oidc_metadata_url=issuer.metadata_url
    )
    verifier = CallbackTokenVerifier(
        issuer.metadata_url, module_emulator.immutable_resource_id, key_refresh_cooldown=0
    )
    server = start_api(environ, callback_verifier=verifier)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def callback_registry(
    azurite: Azurite, callback_table: str, callback_api: ApiServer
) -> TableClient:
    """The callback API's registry table, read directly."""
    return TableClient.from_connection_string(azurite.connection_string, callback_table)
