"""Run the whole Pulumi program in-process under mocks and return every registration.

Used by tests/infra (the program's own tests) and tests/policy (the CrossGuard pack checked
against the real program). ``set_mocks`` is global, so each call installs a fresh monitor and
root stack and runs the program function from scratch; calls do not leak into each other.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import _sync_await
from pulumi.runtime.stack import run_pulumi_func

from tests.infra.mocks import AzureMocks, CapturingMonitor, Registration

PROJECT = "acs-call-recording"
STACK = "dev"
_SCRATCH = tempfile.TemporaryDirectory(prefix="acsrec-harness-")  # removed at interpreter exit

__all__ = [
    "PROJECT",
    "STACK",
    "ProgramRun",
    "Registration",
    "run_program",
    "run_program_with_outputs",
    "stand_in_package",
]


@dataclass
class ProgramRun:
    """Everything one run registered, plus the resolved stack outputs."""

    registrations: list[Registration]
    outputs: dict[str, Any]


def stand_in_package() -> Path:
    """A tiny deterministic zip the code deployment points at, so no pip runs under the mocks."""
    path = Path(_SCRATCH.name) / "functionapp-stand-in.zip"
    if not path.exists():
        with zipfile.ZipFile(path, "w") as archive:
            info = zipfile.ZipInfo("host.json", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, '{"version": "2.0"}')
    return path


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def ensure_event_loop() -> None:
    """Give Pulumi's runtime an open event loop in this thread.

    pytest-asyncio closes and unsets the main thread's loop after each async test; the Pulumi
    runtime then finds none, so a program run after an async test would fail for that reason.
    """
    try:
        if not asyncio.get_event_loop().is_closed():
            return
    except RuntimeError:
        pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    config: Mapping[str, Any] | None = None, *, preview: bool = False
) -> list[Registration]:
    """Run the program with ``config`` (keys without the project prefix) and capture it all.

    :raises infra.config.ConfigError: when the config breaks a rule (nothing is registered).
    """
    return run_program_with_outputs(config, preview=preview).registrations


def run_program_with_outputs(
    config: Mapping[str, Any] | None = None, *, preview: bool = False
) -> ProgramRun:
    """:func:`run_program`, also returning the stack outputs (``pulumi.export``) resolved."""
    from infra import program  # imported late: the mocks must be installed first

    ensure_event_loop()
    values = {"packagePath": str(stand_in_package()), **dict(config or {})}
    mocks = AzureMocks()
    monitor = CapturingMonitor(mocks)
    runtime_settings.set_root_resource(None)  # type: ignore[arg-type] - a fresh stack per run
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=preview, monitor=monitor)
    set_all_config({f"{PROJECT}:{key}": _config_text(value) for key, value in values.items()})
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()
    try:
        _sync_await(run_pulumi_func(program.run))
        stack = runtime_settings.get_root_resource()
        exported = getattr(stack, "outputs", {}) or {}
        outputs = {
            key: _sync_await(pulumi.Output.from_input(value).future())
            for key, value in exported.items()
        }
    finally:
        set_all_config({})
    return ProgramRun(monitor.registrations, outputs)
