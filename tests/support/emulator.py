"""The ``emulator`` fixture and ``start_emulator()``: a real ``python -m emulator`` process.

Each emulator runs on a free 127.0.0.1 port with a random access key and its own data dir, and
is stopped with its process group when its owner ends. ``emulator`` hands every test the
session's emulator after ``reset()``; ``emulator_with_queue`` starts one per test, because a
queue shared between tests would mix their events.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation import CallAutomationClient
from azure.communication.callautomation.aio import (
    CallAutomationClient as AsyncCallAutomationClient,
)

from emulator.client import emulator_call_automation_client, emulator_call_automation_client_async
from emulator.constants import (
    DEFAULT_IMMUTABLE_RESOURCE_ID,
    DEFAULT_RESOURCE_ID,
    OIDC_METADATA_PATH,
    TOPIC_PATH,
)
from emulator.simulation import EmulatorSimulation
from local_runtime.processes import Azurite, ManagedProcess, emulator_process, free_port


@dataclass
class RunningEmulator:
    endpoint: str
    access_key: str
    data_dir: Path
    process: ManagedProcess
    event_queue_name: str | None = None
    event_queue_connection_string: str | None = None
    resource_id: str = DEFAULT_RESOURCE_ID
    immutable_resource_id: str = DEFAULT_IMMUTABLE_RESOURCE_ID
    #: The key of the Event Grid custom topic it serves at :attr:`topic_endpoint`.
    topic_key: str = ""
    simulation: EmulatorSimulation = field(init=False)

    def __post_init__(self) -> None:
        self.simulation = EmulatorSimulation(self.endpoint)

    @property
    def media_override_base_url(self) -> str:
        """Where media URLs (``https://*.asm.skype.com/...``) are sent by the override policy."""
        return self.endpoint

    @property
    def oidc_metadata_url(self) -> str:
        return f"{self.endpoint}{OIDC_METADATA_PATH}"

    @property
    def topic_endpoint(self) -> str:
        """The custom topic's ``endpoint``, as ``RECORDING_EVENTS_TOPIC_ENDPOINT`` names it."""
        return f"{self.endpoint}{TOPIC_PATH}"

    def sdk_client(self, **kwargs: Any) -> CallAutomationClient:
        """A real sync ``CallAutomationClient`` for this emulator (retries off unless given)."""
        kwargs.setdefault("retry_total", 0)
        return emulator_call_automation_client(self.endpoint, self.access_key, **kwargs)

    def async_sdk_client(self, **kwargs: Any) -> AsyncCallAutomationClient:
        kwargs.setdefault("retry_total", 0)
        return emulator_call_automation_client_async(self.endpoint, self.access_key, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def random_access_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def start_emulator(
    tmp_dir: Path,
    *,
    azurite: Azurite | None = None,
    queue_name: str | None = None,
    clock: str = "manual",
    extra_args: Sequence[str] = (),
) -> RunningEmulator:
    """Start ``python -m emulator`` and wait until it answers; the caller must ``stop()`` it.

    With ``azurite`` the emulator delivers events to queue ``queue_name`` there (a fresh random
    name when not given).
    """
    port = free_port()
    access_key = random_access_key()
    topic_key = secrets.token_urlsafe(24)
    data_dir = Path(tmp_dir) / f"emulator-{port}"
    args = ["--clock", clock]
    connection_string = None
    if azurite is not None:
        queue_name = queue_name or f"recording-events-{secrets.token_hex(4)}"
        connection_string = azurite.connection_string
        args += ["--event-queue-connection-string", connection_string]
        args += ["--event-queue-name", queue_name]
    else:
        queue_name = None
    process, endpoint = emulator_process(
        data_dir,
        access_key,
        port=port,
        args=[*args, *extra_args],
        log_path=data_dir / "emulator.log",
        topic_key=topic_key,
    )
    process.start()
    return RunningEmulator(
        endpoint=endpoint,
        access_key=access_key,
        topic_key=topic_key,
        data_dir=data_dir,
        process=process,
        event_queue_name=queue_name,
        event_queue_connection_string=connection_string,
    )


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator process for the session; tests get it through ``emulator``, reset."""
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emulator(shared_emulator: RunningEmulator) -> RunningEmulator:
    """A clean emulator (manual clock, no event sinks) for one test.

    Starting a process per test costs about a second of a two-core machine, so the session's
    emulator is reset instead: calls, recordings, media, events and faults are forgotten. Tests
    that need other start-up options call ``start_emulator`` themselves.
    """
    assert shared_emulator.process.running, shared_emulator.log_tail()
    shared_emulator.simulation.reset()
    return shared_emulator


@pytest.fixture
def emulator_with_queue(tmp_path: Path, azurite: Azurite) -> Iterator[RunningEmulator]:
    """A fresh emulator that delivers events to its own queue in the session's Azurite."""
    running = start_emulator(tmp_path, azurite=azurite)
    try:
        yield running
    finally:
        running.stop()
