"""Smoke-test a deployed stack: the API answers, refuses callers without a key, and the events
queue exists. `deploy.yml` runs it right after `pulumi up`; it runs against the local stack too.

Usage::

    python -m scripts.smoke_test --outputs-json stack-outputs.json
    python -m scripts.smoke_test --api-base-url http://127.0.0.1:7071/api \\
        --storage-connection-string "$CONN" --events-queue recording-events

``--outputs-json`` reads the file `pulumi stack output --json` writes (UPPER_SNAKE names:
``API_BASE_URL``, ``EVENTS_QUEUE``, ``INGRESS_ACCOUNT_NAME``, ``NETWORK_MODE``); explicit flags
win over it. In Azure the queue is read with ``DefaultAzureCredential`` (the deploying identity,
no keys); on one machine a connection string is used instead (``--storage-connection-string`` or
the ``ARCHIVE_STORAGE_CONNECTION_STRING`` environment variable, never printed). A private stack's
ingress account (where the events queue lives) refuses public networks, so from a runner outside
its VNet the queue check is skipped unless ``--queue-service-url`` or a connection string says
where it can be reached.

Each check prints one line, ``PASS``/``FAIL``/``SKIP`` with what was asked and what came back.
Exit code: 0 all passed (or were skipped), 1 a check failed, 2 the arguments or outputs were
unusable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from recording_pipeline.settings import check_storage_connection_string

# A recording id that cannot exist: the protected route must refuse the caller before it looks.
PROTECTED_PATH = "recordings/does-not-exist"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
# A smoke test should fail in seconds, not sit through the SDK's default back-off.
_QUEUE_RETRIES = 2
NETWORK_MODES = ("public", "private")
PRIVATE_QUEUE_SKIP = (
    "the ingress account admits no network (NETWORK_MODE private); run the smoke "
    "test inside the VNet with --queue-service-url to check the events queue"
)


class SmokeConfigError(ValueError):
    """The outputs or flags do not say what to test; the message names the field and the rule."""


@dataclass(frozen=True)
class SmokeTarget:
    """What to check, resolved from stack outputs and flags."""

    api_base_url: str
    events_queue: str
    queue_service_url: str | None = None
    # Carries an account key (Azurite's well-known one locally): never in a repr or a log line.
    storage_connection_string: str | None = field(default=None, repr=False)
    queue_skip_reason: str | None = None
    """Why the queue cannot be checked from here (a private stack), or None to check it."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    skipped: bool = False

    def __str__(self) -> str:
        verdict = "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"
        return f"{verdict} {self.name}: {self.detail}"


# --- inputs -------------------------------------------------------------------------------------


def load_outputs(path: Path) -> dict[str, Any]:
    """The JSON object `pulumi stack output --json` wrote."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SmokeConfigError(f"--outputs-json: {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise SmokeConfigError(f"--outputs-json: {path} is not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise SmokeConfigError(f"--outputs-json: {path} must hold a JSON object of outputs")
    return data


def _http_url(field: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise SmokeConfigError(f"{field} ({value!r}) must be an http(s) URL with a host")
    return value.rstrip("/")


def _pick(explicit: str | None, outputs: Mapping[str, Any], output_name: str) -> str | None:
    if explicit:
        return explicit
    value = outputs.get(output_name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SmokeConfigError(f"output {output_name} ({value!r}) must be a non-empty string")
    return value.strip()


def resolve_target(args: argparse.Namespace, outputs: Mapping[str, Any]) -> SmokeTarget:
    """Flags first, then stack outputs; every missing or malformed field is named.

    :raises SmokeConfigError: on the first unusable field.
    """
    api = _pick(args.api_base_url, outputs, "API_BASE_URL")
    if api is None:
        raise SmokeConfigError("--api-base-url (or output API_BASE_URL) is required")
    queue = _pick(args.events_queue, outputs, "EVENTS_QUEUE")
    if queue is None:
        raise SmokeConfigError("--events-queue (or output EVENTS_QUEUE) is required")
    if not _QUEUE_NAME.match(queue):
        raise SmokeConfigError(
            f"events queue ({queue!r}) must be a storage queue name: 3-63 lowercase letters, "
            "digits and single hyphens"
        )
    connection = args.storage_connection_string or os.environ.get(
        "ARCHIVE_STORAGE_CONNECTION_STRING"
    )
    if connection:
        try:
            check_storage_connection_string(connection)
        except ValueError as error:
            source = (
                "--storage-connection-string"
                if args.storage_connection_string
                else "ARCHIVE_STORAGE_CONNECTION_STRING"
            )
            raise SmokeConfigError(f"{source} {error}") from None
    queue_url = args.queue_service_url
    mode = _pick(args.network_mode, outputs, "NETWORK_MODE") or "public"
    if mode not in NETWORK_MODES:
        raise SmokeConfigError(
            f"network mode ({mode!r}) must be one of: {', '.join(NETWORK_MODES)}"
        )
    if mode == "private" and queue_url is None and not connection:
        # Nothing says where the private queue can be reached from: do not guess the public one.
        return SmokeTarget(
            api_base_url=_http_url("API base URL", api),
            events_queue=queue,
            queue_skip_reason=PRIVATE_QUEUE_SKIP,
        )
    if queue_url is None and not connection:
        account = _pick(None, outputs, "INGRESS_ACCOUNT_NAME")
        if account is None:
            raise SmokeConfigError(
                "--queue-service-url, --storage-connection-string or output "
                "INGRESS_ACCOUNT_NAME is required to find the events queue"
            )
        if not _ACCOUNT_NAME.match(account):
            raise SmokeConfigError(
                f"output INGRESS_ACCOUNT_NAME ({account!r}) must be 3-24 lowercase letters "
                "or digits"
            )
        queue_url = f"https://{account}.queue.core.windows.net"
    return SmokeTarget(
        api_base_url=_http_url("API base URL", api),
        events_queue=queue,
        queue_service_url=_http_url("queue service URL", queue_url) if queue_url else None,
        storage_connection_string=connection or None,
    )


def api_url(base: str, route: str) -> str:
    """``{root}/api/{route}``: the base may be the app root or already end in ``/api``."""
    root = base.rstrip("/")
    root = root.removesuffix("/api")
    return f"{root}/api/{route}"


# --- checks -------------------------------------------------------------------------------------


def check_health(
    client: httpx.Client, base: str, *, wait_seconds: float, sleep: Callable[[float], None]
) -> CheckResult:
    """A fresh Function App cold-starts: keep asking for up to ``wait_seconds``."""
    url = api_url(base, "health")
    deadline = time.monotonic() + wait_seconds
    last = "no answer"
    while True:
        try:
            response = client.get(url)
            if response.status_code == 200:
                return CheckResult("health", True, f"GET {url} answered 200")
            last = f"answered {response.status_code}"
        except httpx.HTTPError as error:
            last = f"failed: {type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            return CheckResult("health", False, f"GET {url} {last}, expected 200")
        sleep(min(5.0, max(0.1, wait_seconds / 10)))


def check_key_required(client: httpx.Client, base: str) -> CheckResult:
    """Without a function key the API must refuse (401), not serve or crash."""
    url = api_url(base, PROTECTED_PATH)
    try:
        response = client.get(url)
    except httpx.HTTPError as error:
        return CheckResult("auth", False, f"GET {url} failed: {type(error).__name__}: {error}")
    if response.status_code == 401:
        return CheckResult("auth", True, f"GET {url} without a key answered 401")
    return CheckResult(
        "auth", False, f"GET {url} without a key answered {response.status_code}, expected 401"
    )


def _queue_client(target: SmokeTarget) -> Any:
    from azure.storage.queue import QueueClient

    if target.storage_connection_string:
        return QueueClient.from_connection_string(
            target.storage_connection_string, target.events_queue, retry_total=_QUEUE_RETRIES
        )
    from azure.identity import DefaultAzureCredential

    if target.queue_service_url is None:
        raise SmokeConfigError("a queue service URL or a connection string is required")
    return QueueClient(
        target.queue_service_url,
        target.events_queue,
        credential=DefaultAzureCredential(),
        retry_total=_QUEUE_RETRIES,
    )


def check_events_queue(target: SmokeTarget) -> CheckResult:
    """The queue Event Grid delivers to must exist before any recording finishes."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    where = target.queue_service_url or "the storage account of the connection string"
    try:
        with _queue_client(target) as queue:
            queue.get_queue_properties()
    except ResourceNotFoundError:
        return CheckResult("queue", False, f"queue {target.events_queue!r} not found in {where}")
    except (AzureError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return CheckResult(
            "queue", False, f"queue {target.events_queue!r} in {where} could not be read: {reason}"
        )
    return CheckResult("queue", True, f"queue {target.events_queue!r} exists in {where}")


def run_checks(
    target: SmokeTarget,
    *,
    timeout: float = 10.0,
    health_wait_seconds: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return [
            check_health(
                client, target.api_base_url, wait_seconds=health_wait_seconds, sleep=sleep
            ),
            check_key_required(client, target.api_base_url),
            (
                CheckResult("queue", True, target.queue_skip_reason, skipped=True)
                if target.queue_skip_reason
                else check_events_queue(target)
            ),
        ]


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.smoke_test", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--outputs-json", type=Path, help="file from `pulumi stack output --json`")
    parser.add_argument("--api-base-url", help="the API's base URL (app root or .../api)")
    parser.add_argument("--events-queue", help="name of the Event Grid events queue")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--queue-service-url", help="https://<account>.queue.core.windows.net")
    where.add_argument(
        "--storage-connection-string",
        help="local runs only (Azurite); default: $ARCHIVE_STORAGE_CONNECTION_STRING",
    )
    parser.add_argument(
        "--network-mode",
        choices=NETWORK_MODES,
        help="the stack's network (default: output NETWORK_MODE, else public)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument(
        "--health-wait",
        type=float,
        default=180.0,
        help="seconds to keep retrying the health check while the app cold-starts",
    )
    args = parser.parse_args(argv)
    for flag in ("timeout", "health_wait"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag.replace('_', '-')} must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        outputs = load_outputs(args.outputs_json) if args.outputs_json else {}
        target = resolve_target(args, outputs)
    except SmokeConfigError as error:
        print(f"smoke test: {error}", file=sys.stderr)
        return 2
    results = run_checks(target, timeout=args.timeout, health_wait_seconds=args.health_wait)
    for result in results:
        print(result)
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"smoke test FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    skipped = sum(r.skipped for r in results)
    ran = len(results) - skipped
    print(f"smoke test passed: {ran} checks" + (f", {skipped} skipped" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
