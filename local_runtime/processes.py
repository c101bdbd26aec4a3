"""Start and stop the local services (Azurite, emulator, API, worker) as child processes.

`make local`, `make up`, the benchmarks and the test fixtures all start the same services the same
way, so a stack that works in the tests works on a laptop. Every service binds 127.0.0.1 on a free
port, keeps its state in a temp dir, and is stopped with its whole process group, so nothing is
left running when the caller exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's well-known development account. It is public, documented and only ever valid
# against a local Azurite; it is not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServiceStartError(RuntimeError):
    """A local service did not become ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def http_answers(url: str, timeout: float = 0.5) -> bool:
    """True when ``url`` answers with any HTTP status (a 401 or 404 still means "listening")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - loopback URL we built
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


#: What a person (Ctrl-C) or a supervisor (SIGTERM) sends to stop the stack.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration, then act on them as they would have.

    Around a spawn, so that the child's handle is stored before a stop request can unwind the
    caller. The handlers are swapped (not the signal mask, which a child would inherit): a
    child starts with default handlers after ``exec``. Off the main thread (where Python cannot
    install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, _record_into(received)) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def _record_into(received: list[int]) -> Callable[[int, FrameType | None], None]:
    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    return record


@dataclass
class ManagedProcess:
    """One child process in its own process group, with its output in a log file."""

    name: str
    argv: Sequence[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT
    log_path: Path | None = None
    startup_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    #: Where this run's output starts in the log (a restart appends to the same log).
    log_offset: int = 0

    def start(self) -> ManagedProcess:
        """Start (or start again: the log is appended to, never truncated) and wait until ready."""
        if self.log_path is None:
            fd, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.log_offset = log.tell()
        # Ctrl-C between the fork and the assignment would leave a child nobody knows of.
        with signals_deferred():
            self.process = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        log.close()
        try:
            self._wait_ready()
        except BaseException:  # Ctrl-C while waiting too: a half-started child is still a child
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceStartError(
                    f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceStartError(
            f"{self.name} was not ready after {self.startup_timeout:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_since_start(self) -> str:
        """What this run wrote (after a restart, not what the previous run left)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def note(self, line: str) -> None:
        """Append one line to the service's log (what its supervisor did, in its own log)."""
        if self.log_path is not None:
            with self.log_path.open("a") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [supervisor] {line}\n")

    @property
    def exit_description(self) -> str:
        """``exited with code 3`` or ``was killed by SIGKILL``; empty while running."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return ""
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL at once: what a crash looks like to the rest of the stack."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Azurite:
    """Azurite (blob, queue, table) on 127.0.0.1 with its data in ``location``."""

    location: Path
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    host: str = "127.0.0.1"
    #: Default: ``azurite.log`` in ``location``.
    log_path: Path | None = None
    proc: ManagedProcess | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.blob_port}/{AZURITE_ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{self.host}:{self.queue_port}/{AZURITE_ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{self.host}:{self.table_port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def start(self) -> Azurite:
        if not AZURITE_BIN.exists():
            raise ServiceStartError(
                f"Azurite is not installed at {AZURITE_BIN}: run `make install` (npm ci)."
            )
        self.location.mkdir(parents=True, exist_ok=True)
        self.blob_port = self.blob_port or free_port(self.host)
        self.queue_port = self.queue_port or free_port(self.host)
        self.table_port = self.table_port or free_port(self.host)
        argv = [
            str(AZURITE_BIN),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--location",
            str(self.location),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.blob_port),
            "--queueHost",
            self.host,
            "--queuePort",
            str(self.queue_port),
            "--tableHost",
            self.host,
            "--tablePort",
            str(self.table_port),
        ]
        # Known before it starts, so a stop during its start-up finds it.
        self.proc = ManagedProcess(
            name="azurite",
            argv=argv,
            ready=lambda: all(
                port_is_open(self.host, p)
                for p in (self.blob_port, self.queue_port, self.table_port)
            ),
            log_path=self.log_path or self.location / "azurite.log",
        )
        self.proc.start()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


def emulator_process(
    data_dir: Path,
    access_key: str,
    *,
    port: int | None = None,
    args: Sequence[str] = (),
    log_path: Path | None = None,
    topic_key: str | None = None,
) -> tuple[ManagedProcess, str]:
    """``python -m emulator`` on 127.0.0.1, not started yet, and the emulator's base URL.

    The access key goes in the environment (``ACS_EMULATOR_ACCESS_KEY``), never on the command
    line, where ``ps`` would show it; so does ``topic_key`` (``EVENTGRID_EMULATOR_TOPIC_KEY``),
    which makes it serve an Event Grid custom topic too.
    """
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        name="emulator",
        argv=python_module_argv(
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args,
        ),
        env={
            "ACS_EMULATOR_ACCESS_KEY": access_key,
            **({"EVENTGRID_EMULATOR_TOPIC_KEY": topic_key} if topic_key else {}),
        },
        ready=lambda: http_answers(f"{endpoint}/emulator/health"),
        log_path=log_path,
        startup_timeout=30.0,
    )
    return process, endpoint
