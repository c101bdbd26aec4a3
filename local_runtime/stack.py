"""The whole pipeline on one machine: Azurite, the ACS emulator, the API, the archive worker and
the reconciler.

``make local`` and ``make up`` start it through ``scripts/local_stack.py``, the tests and the API
benchmark through :func:`running_stack`. Every service binds 127.0.0.1 on a free port and keeps
its state under one temp dir (or ``--state-dir``). The services are child processes in their own
process groups; they are stopped on exit, on Ctrl-C and on SIGTERM, so nothing is left running.
What runs against the stack (the demo, a test) is the caller's business: this module knows
nothing of it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from local_runtime.processes import (
    Azurite,
    ManagedProcess,
    free_port,
    http_answers,
    python_module_argv,
    start_emulator_process,
)

LOCAL_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.Communication/communicationServices/acs-emulator"
)
LOCAL_IMMUTABLE_RESOURCE_ID = "00000000-0000-4000-8000-00000000ac50"
EVENTS_QUEUE = "recording-events"
RECORDINGS_CONTAINER = "recordings"
REGISTRY_TABLE = "recordings"
DEAD_LETTER_CONTAINER = "event-deadletter"


def _random_access_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class LocalStack:
    """Starts the services in dependency order and knows how to reach each."""

    state_dir: Path
    delete_from_acs_after_archive: bool = True
    emulator_args: tuple[str, ...] = ()
    api_args: tuple[str, ...] = ()
    #: Off for a benchmark of the API alone.
    with_archive_worker: bool = True
    #: Seconds between reconciler runs (the timer function's part); 0: no reconciler.
    reconcile_every_seconds: float = 60.0
    access_key: str = field(default_factory=_random_access_key)
    function_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    azurite: Azurite | None = None
    emulator: ManagedProcess | None = None
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    reconciler: ManagedProcess | None = None
    emulator_port: int = 0
    api_port: int = 0

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def oidc_metadata_url(self) -> str:
        return f"{self.emulator_url}/calling/.well-known/acsopenidconfiguration"

    def function_env(self) -> dict[str, str]:
        """The Function App's settings, pointed at the local services (same names as in Azure)."""
        if self.azurite is None:
            raise RuntimeError("start Azurite before asking for the function settings")
        return {
            "ACS_ENDPOINT": self.emulator_url,
            "ACS_ACCESS_KEY": self.access_key,
            "ACS_RESOURCE_ID": LOCAL_RESOURCE_ID,
            "ACS_IMMUTABLE_RESOURCE_ID": LOCAL_IMMUTABLE_RESOURCE_ID,
            "ACS_MEDIA_ENDPOINT_OVERRIDE": self.emulator_url,
            "ARCHIVE_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
            "RecordingQueue": self.azurite.connection_string,
            "RECORDINGS_CONTAINER": RECORDINGS_CONTAINER,
            "EVENTS_QUEUE": EVENTS_QUEUE,
            "REGISTRY_TABLE": REGISTRY_TABLE,
            "CALLBACK_OIDC_METADATA_URL": self.oidc_metadata_url,
            "DELETE_FROM_ACS_AFTER_ARCHIVE": str(self.delete_from_acs_after_archive).lower(),
            "LOCAL_FUNCTION_KEY": self.function_key,
        }

    def start(self) -> LocalStack:
        try:
            self._start_azurite()
            self._provision_storage()
            self._start_emulator()
            self._start_api()
            if self.with_archive_worker:
                self._start_worker()
            if self.reconcile_every_seconds:
                self._start_reconciler()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_azurite(self) -> None:
        self.azurite = Azurite(location=self.state_dir / "azurite").start()

    def _provision_storage(self) -> None:
        """Create what the Pulumi program creates in Azure: container, queues and table."""
        assert self.azurite is not None
        connection = self.azurite.connection_string
        for container in (RECORDINGS_CONTAINER, DEAD_LETTER_CONTAINER):
            with contextlib.suppress(ResourceExistsError):
                BlobServiceClient.from_connection_string(connection).create_container(container)
        queues = QueueServiceClient.from_connection_string(connection)
        for name in (EVENTS_QUEUE, f"{EVENTS_QUEUE}-poison"):
            with contextlib.suppress(ResourceExistsError):
                queues.create_queue(name)
        TableServiceClient.from_connection_string(connection).create_table_if_not_exists(
            REGISTRY_TABLE
        )

    def _start_emulator(self) -> None:
        assert self.azurite is not None
        self.emulator_port = free_port()
        self.emulator, _ = start_emulator_process(
            self.state_dir / "emulator",
            self.access_key,
            port=self.emulator_port,
            args=(
                "--resource-id",
                LOCAL_RESOURCE_ID,
                "--immutable-resource-id",
                LOCAL_IMMUTABLE_RESOURCE_ID,
                "--event-queue-connection-string",
                self.azurite.connection_string,
                "--event-queue-name",
                EVENTS_QUEUE,
                *self.emulator_args,
            ),
            log_path=self.state_dir / "emulator.log",
        )

    def _start_api(self) -> None:
        self.api_port = free_port()
        self.api = ManagedProcess(
            name="api",
            argv=python_module_argv(
                "scripts.serve_api",
                *("--host", "127.0.0.1", "--port", str(self.api_port), *self.api_args),
            ),
            env=self.function_env(),
            ready=lambda: http_answers(f"{self.api_url}/api/health"),
            log_path=self.state_dir / "api.log",
        ).start()

    def _start_worker(self) -> None:
        # A short polling interval keeps the local demo snappy; host.json's value applies in Azure.
        worker = ManagedProcess(
            name="archive-worker",
            argv=python_module_argv("scripts.archive_worker", "--max-polling-interval", "0.5"),
            env=self.function_env(),
            ready=lambda: "polling" in worker.log_tail(5),
            log_path=self.state_dir / "archive-worker.log",
        )
        self.worker = worker.start()

    def _start_reconciler(self) -> None:
        every = str(self.reconcile_every_seconds)
        reconciler = ManagedProcess(
            name="reconciler",
            argv=python_module_argv("scripts.reconcile", "--every", every),
            env=self.function_env(),
            ready=lambda: "reconciler running" in reconciler.log_tail(5),
            log_path=self.state_dir / "reconciler.log",
        )
        self.reconciler = reconciler.start()

    def stop(self) -> None:
        """Stop in reverse order; each stop is safe if the service never started."""
        for service in (self.reconciler, self.worker, self.api, self.emulator):
            if service is not None:
                service.stop()
        if self.azurite is not None:
            self.azurite.stop()

    def all_running(self) -> bool:
        services = (
            self.emulator,
            self.api,
            *((self.worker,) if self.with_archive_worker else ()),
            *((self.reconciler,) if self.reconcile_every_seconds else ()),
        )
        return all(s is not None and s.running for s in services)

    def describe(self) -> dict[str, str]:
        """What a person needs to use the running stack (the keys are local-only, random)."""
        assert self.azurite is not None
        return {
            "api": f"{self.api_url}/api",
            "function key (x-functions-key)": self.function_key,
            "emulator": self.emulator_url,
            "emulator access key": self.access_key,
            "storage connection string": self.azurite.connection_string,
            "state and logs": str(self.state_dir),
        }


@contextlib.contextmanager
def running_stack(state_dir: Path | None = None, **options: object) -> Iterator[LocalStack]:
    """Start the stack, yield it, and always stop it (also on Ctrl-C and SIGTERM)."""
    with contextlib.ExitStack() as cleanup:
        if state_dir is None:
            state_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="acsrec-")))
        stack = LocalStack(state_dir=state_dir, **options)  # type: ignore[arg-type]
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        cleanup.callback(signal.signal, signal.SIGTERM, previous)
        cleanup.callback(stack.stop)
        yield stack.start()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def print_endpoints(stack: LocalStack) -> None:
    """What :meth:`LocalStack.describe` says, one aligned line each."""
    width = max(len(k) for k in stack.describe())
    for key, value in stack.describe().items():
        print(f"  {key.ljust(width)}  {value}")


def write_env_file(stack: LocalStack, path: Path) -> None:
    """The API's settings as JSON, readable by its owner only from the first byte (local keys)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(stack.function_env(), indent=2))


def run_until_a_service_stops(stack: LocalStack) -> int:
    """Keep the stack up (Ctrl-C or SIGTERM end it); 1 when one of its services stopped."""
    print("Press Ctrl-C to stop.")
    while stack.all_running():
        time.sleep(0.5)
    print("A service stopped; shutting the stack down.", file=sys.stderr)
    return 1
