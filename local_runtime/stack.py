"""The whole pipeline on one machine: Azurite, the ACS emulator, the API, the archive worker and
the reconciler.

``make local`` and ``make up`` start it through ``scripts/local_stack.py``, the tests and the API
benchmark through :func:`running_stack`. Every service binds 127.0.0.1 on a free port and keeps
its state under one dir (``--state-dir``, or a temp dir), its log in ``<state>/logs/``. The
services are child processes in their own process groups; they are stopped on exit, on Ctrl-C
and on SIGTERM, so nothing is left running.

While ``make up`` runs, :func:`run_supervised` restarts the Function App's two processes (the
API and the archive worker) when one dies, as the Functions host restarts its worker: with a
log line, up to :data:`RESTART_LIMIT` times in :data:`RESTART_WINDOW_SECONDS`, keeping every
piece of state (Azurite's data, the queue, the log). A message the dead worker held returns to
the queue when its lease ends, and the archiver resumes the copy after the last staged block.
Azurite and the emulator are not restarted (the emulator's calls live in its memory): when one
of them stops, the stack stops and keeps its state and logs.

With ``api_auth`` ``entraId`` or ``both`` (``make up API_AUTH=entraId``) a local token issuer
(``local_runtime.token_issuer``, a thread of this process) stands in for the Entra ID tenant:
the API is pointed at its metadata, and the CLI's environment points azure-identity's managed
identity at its token endpoint, so ``recordings`` signs in exactly as it does in Azure.

What runs against the stack (the demo, a test) is the caller's business: this module knows
nothing of it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from emulator.constants import TOPIC_PATH
from local_runtime.processes import (
    STOP_SIGNALS,
    Azurite,
    ManagedProcess,
    ServiceStartError,
    emulator_process,
    free_port,
    http_answers,
    python_module_argv,
)
from local_runtime.token_issuer import LOCAL_API_ROLE, TokenIssuer

#: Values of ``api_auth`` (the API's ``API_AUTH``).
API_AUTH_MODES = ("functionKey", "entraId", "both")

LOCAL_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/"
    "Microsoft.Communication/communicationServices/acs-emulator"
)
LOCAL_IMMUTABLE_RESOURCE_ID = "00000000-0000-4000-8000-00000000ac50"
EVENTS_QUEUE = "recording-events"
RECORDINGS_CONTAINER = "recordings"
REGISTRY_TABLE = "recordings"
DEAD_LETTER_CONTAINER = "event-deadletter"
LOGS = "logs"
#: A dead API or archive worker is restarted at most this often within the window; one that
#: keeps dying is a bug to read in its log, not to hide by restarting it forever.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 600.0
#: How long a message the worker holds stays invisible without a renewal (renewed every third
#: of it): after a crash it is redelivered this soon. host.json's visibilityTimeout is the wait
#: after a *failure*, which this does not change.
WORKER_LEASE_SECONDS = 10


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
    worker_lease_seconds: int = WORKER_LEASE_SECONDS
    #: Who may call the API: ``functionKey``, ``entraId`` or ``both`` (as ``API_AUTH``).
    api_auth: str = "functionKey"
    #: Serve the Event Grid custom topic (in the emulator) and publish the recordings' events
    #: to it, as ``publishEvents`` does in Azure.
    publish_events: bool = True
    access_key: str = field(default_factory=_random_access_key)
    function_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The local topic's access key: Azure's topic takes Entra tokens only, the emulator's a key.
    topic_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    azurite: Azurite | None = None
    emulator: ManagedProcess | None = None
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    reconciler: ManagedProcess | None = None
    #: The local Entra ID tenant, with ``api_auth`` ``entraId`` or ``both``.
    token_issuer: TokenIssuer | None = None
    emulator_port: int = 0
    api_port: int = 0

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / LOGS

    @property
    def topic_endpoint(self) -> str:
        """The emulator's custom topic, named as ARM names a topic's ``endpoint``."""
        return f"{self.emulator_url}{TOPIC_PATH}"

    @property
    def oidc_metadata_url(self) -> str:
        return f"{self.emulator_url}/calling/.well-known/acsopenidconfiguration"

    @property
    def uses_tokens(self) -> bool:
        return self.api_auth != "functionKey"

    @property
    def uses_function_key(self) -> bool:
        return self.api_auth != "entraId"

    @property
    def api_scope(self) -> str:
        """What a client asks the token issuer for (``<application ID URI>/.default``)."""
        return f"{self._issuer().api_app_id_uri}/.default"

    def _issuer(self) -> TokenIssuer:
        if self.token_issuer is None:
            raise RuntimeError(f"api_auth {self.api_auth} has no token issuer")
        return self.token_issuer

    def api_auth_env(self) -> dict[str, str]:
        """The API's ``API_*`` settings: the local issuer's tenant, both audience forms, its
        caller app and app role (empty with ``functionKey``)."""
        if not self.uses_tokens:
            return {}
        issuer = self._issuer()
        return {
            "API_AUTH": self.api_auth,
            "API_TENANT_ID": issuer.tenant_id,
            "API_AUDIENCE": f"{issuer.api_app_id_uri},{issuer.api_client_id}",
            "API_ALLOWED_CLIENT_IDS": issuer.caller_client_id,
            "API_REQUIRED_ROLE": LOCAL_API_ROLE,
            "API_OIDC_METADATA_URL": issuer.metadata_url,
        }

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
            **self.api_auth_env(),
            **(
                {
                    "RECORDING_EVENTS_TOPIC_ENDPOINT": self.topic_endpoint,
                    "RECORDING_EVENTS_TOPIC_KEY": self.topic_key,
                }
                if self.publish_events
                else {}
            ),
        }

    def start(self) -> LocalStack:
        """Start every service in order; on any failure or interruption stop what started.

        Each service is stored on the stack before it starts, so :meth:`stop` finds one that is
        still starting (Azurite takes seconds) when Ctrl-C arrives.
        """
        if self.api_auth not in API_AUTH_MODES:
            raise ValueError(f"api_auth must be one of {', '.join(API_AUTH_MODES)}")
        try:
            if self.uses_tokens:
                self.token_issuer = TokenIssuer().start()
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
        self.azurite = Azurite(
            location=self.state_dir / "azurite", log_path=self.logs_dir / "azurite.log"
        )
        self.azurite.start()

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
        self.emulator, _ = emulator_process(
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
            log_path=self.logs_dir / "emulator.log",
            topic_key=self.topic_key if self.publish_events else None,
        )
        self.emulator.start()

    def _start_api(self) -> None:
        # Stored before it starts, so a stop during its start-up finds it.
        self.api, self.api_port = self.api_process("api", self.function_env())
        self.api.start()

    def start_api_process(self, name: str, env: dict[str, str]) -> tuple[ManagedProcess, int]:
        """A second API beside the stack's, started (a benchmark compares settings with it and
        stops it itself), and its port."""
        process, port = self.api_process(name, env)
        return process.start(), port

    def api_process(self, name: str, env: dict[str, str]) -> tuple[ManagedProcess, int]:
        """An API (``scripts.serve_api``) with ``env`` on a free loopback port, logging to
        ``<logs>/<name>.log``, not started yet, and its port."""
        port = free_port()
        process = ManagedProcess(
            name=name,
            argv=python_module_argv(
                "scripts.serve_api", *("--host", "127.0.0.1", "--port", str(port), *self.api_args)
            ),
            env=env,
            ready=lambda: http_answers(f"http://127.0.0.1:{port}/api/health"),
            log_path=self.logs_dir / f"{name}.log",
        )
        return process, port

    def _start_worker(self) -> None:
        # A short polling interval keeps the local demo snappy; host.json's value applies in Azure.
        self.worker = worker = ManagedProcess(
            name="archive-worker",
            argv=python_module_argv(
                "scripts.archive_worker",
                *("--max-polling-interval", "0.5"),
                *("--lease-seconds", str(self.worker_lease_seconds)),
            ),
            env=self.function_env(),
            ready=lambda: "polling" in worker.log_since_start(),
            log_path=self.logs_dir / "archive-worker.log",
        )
        worker.start()

    def _start_reconciler(self) -> None:
        every = str(self.reconcile_every_seconds)
        self.reconciler = reconciler = ManagedProcess(
            name="reconciler",
            argv=python_module_argv("scripts.reconcile", "--every", every),
            env=self.function_env(),
            ready=lambda: "reconciler running" in reconciler.log_tail(5),
            log_path=self.logs_dir / "reconciler.log",
        )
        reconciler.start()

    def stop(self) -> None:
        """Stop in reverse order; each stop is safe if the service never started."""
        for service in (self.reconciler, self.worker, self.api, self.emulator):
            if service is not None:
                service.stop()
        if self.azurite is not None:
            self.azurite.stop()
        if self.token_issuer is not None:
            self.token_issuer.stop()

    def function_processes(self) -> list[ManagedProcess]:
        """The processes the Functions host would run (and restart): the API, the worker and
        the reconciler (the timer function)."""
        return [p for p in (self.api, self.worker, self.reconciler) if p is not None]

    def infrastructure(self) -> list[ManagedProcess]:
        """What stands in for Azure's services: the emulator (ACS) and Azurite (Storage)."""
        azurite = self.azurite.proc if self.azurite is not None else None
        return [p for p in (self.emulator, azurite) if p is not None]

    def cli_env(self) -> dict[str, str]:
        """What the ``recordings`` CLI and the simulated-call script read.

        With tokens, the CLI signs in with azure-identity (``RECORDINGS_AUTH=entra``), whose
        managed-identity credential finds the local issuer through ``IDENTITY_ENDPOINT`` and
        ``IDENTITY_HEADER`` (App Service's variables); ``AZURE_TOKEN_CREDENTIALS`` keeps
        ``DefaultAzureCredential`` to that credential, so no real sign-in is tried.
        """
        env = {"RECORDINGS_API_URL": f"{self.api_url}/api"}
        if self.uses_function_key:
            env["RECORDINGS_FUNCTION_KEY"] = self.function_key
        if self.uses_tokens:
            issuer = self._issuer()
            env |= {
                "RECORDINGS_AUTH": "entra",
                "RECORDINGS_API_SCOPE": self.api_scope,
                "IDENTITY_ENDPOINT": issuer.identity_endpoint,
                "IDENTITY_HEADER": issuer.identity_header,
                "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
            }
        return env | {"ACS_EMULATOR_URL": self.emulator_url}

    def describe(self) -> dict[str, str]:
        """What a person needs besides :meth:`cli_env` (the keys are local-only, random)."""
        assert self.azurite is not None
        described = {
            "emulator access key": self.access_key,
            **({"events topic": self.topic_endpoint} if self.publish_events else {}),
            "storage connection string": self.azurite.connection_string,
            "state": str(self.state_dir),
            "logs": str(self.logs_dir),
        }
        if self.uses_tokens:
            issuer = self._issuer()
            described |= {
                "API auth": f"{self.api_auth}: Entra ID tokens of the local issuer "
                f"(tenant {issuer.tenant_id}, audience {issuer.api_app_id_uri}); "
                "scripts/recordings signs in by itself",
                "a token for curl": ".venv/bin/python -c 'from azure.identity import "
                "DefaultAzureCredential as C; print(C().get_token("
                f'"{self.api_scope}").token)\'',
            }
        return described


@contextlib.contextmanager
def running_stack(state_dir: Path | None = None, **options: object) -> Iterator[LocalStack]:
    """Start the stack, yield it, and always stop it (also on Ctrl-C and SIGTERM).

    A temp dir made here is deleted afterwards; a ``state_dir`` given is left as it is.
    """
    with contextlib.ExitStack() as cleanup:
        if state_dir is None:
            state_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="acsrec-")))
        stack = LocalStack(state_dir=state_dir, **options)  # type: ignore[arg-type]
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        cleanup.callback(signal.signal, signal.SIGTERM, previous)
        cleanup.callback(_stop_uninterrupted, stack)
        yield stack.start()


def _stop_uninterrupted(stack: LocalStack) -> None:
    """Stop every service even if Ctrl-C or SIGTERM comes again meanwhile (no orphan left).

    The stop signals are blocked while the services stop (one call, so none slips in between
    two handler changes). One that gets through anyway (before the block, or on another
    thread) only starts the stop again: stopping a stopped service does nothing.
    """
    while True:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                stack.stop()
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            return
        except KeyboardInterrupt:
            continue


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def print_endpoints(
    stack: LocalStack, env_file: Path | None = None, *, exports: bool = True
) -> None:
    """Ready-to-paste ``export`` lines for the CLI, then the rest of :meth:`LocalStack.describe`."""
    if exports:
        line = " ".join(f"{name}={shlex.quote(value)}" for name, value in stack.cli_env().items())
        print(f"Use it from another shell: paste\n\n  export {line}\n")
    if env_file is not None:
        print(f"or load every setting (CLI, API and operations scripts):\n\n  source {env_file}\n")
    width = max(len(k) for k in stack.describe())
    for key, value in stack.describe().items():
        print(f"  {key.ljust(width)}  {value}")


def write_env_file(stack: LocalStack, path: Path) -> None:
    """``export NAME='value'`` lines a shell can ``source``: the CLI's variables and the Function
    App's settings. Readable by its owner only from the first byte (local keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(env_file_text(stack))


def env_file_text(stack: LocalStack) -> str:
    settings = {**stack.cli_env(), **stack.function_env()}
    header = f"# make up's local stack (state in {stack.state_dir}); removed when it stops\n"
    return header + "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in settings.items()
    )


def remove_env_file(stack: LocalStack, path: Path) -> None:
    """Remove the file if it is still this stack's (another ``make up`` may have replaced it)."""
    with contextlib.suppress(OSError):
        if path.read_text() == env_file_text(stack):
            path.unlink()


def discard_data_keep_logs(state_dir: Path) -> None:
    """After a clean stop: drop the stack's data (gigabytes, possibly), keep ``logs/``."""
    for entry in state_dir.iterdir():
        if entry.name == LOGS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def run_supervised(
    stack: LocalStack,
    *,
    restart_limit: int = RESTART_LIMIT,
    window_seconds: float = RESTART_WINDOW_SECONDS,
    poll_seconds: float = 0.5,
) -> int:
    """Keep the stack up until Ctrl-C or SIGTERM (which raise KeyboardInterrupt).

    A dead API or archive worker is started again, keeping its state, with one line on stderr
    and in its log. :returns: 1 when a process died more than ``restart_limit`` times in
    ``window_seconds``, or Azurite or the emulator stopped.
    """
    print("Press Ctrl-C to stop.", flush=True)
    restarts: dict[str, deque[float]] = {}
    while True:
        for service in stack.infrastructure():
            if not service.running:
                _say(f"{service.name} {service.exit_description}; stopping the stack.")
                return 1
        for service in stack.function_processes():
            if service.running:
                continue
            recent = restarts.setdefault(service.name, deque())
            now = time.monotonic()
            while recent and now - recent[0] > window_seconds:
                recent.popleft()
            if len(recent) >= restart_limit:
                _say(
                    f"{service.name} {service.exit_description} after {restart_limit} restarts "
                    f"in {window_seconds / 60:.0f} min; stopping the stack "
                    f"(see {service.log_path})."
                )
                return 1
            recent.append(now)
            line = (
                f"{service.name} {service.exit_description}; restarting it (restart "
                f"{len(recent)} of {restart_limit} allowed in {window_seconds / 60:.0f} min)"
            )
            service.note(line)
            _say(line)
            try:
                service.start()
            except ServiceStartError as error:  # counted; the next round tries again or gives up
                _say(str(error).splitlines()[0])
        time.sleep(poll_seconds)


def _say(line: str) -> None:
    print(f"local stack: {line}", file=sys.stderr, flush=True)
