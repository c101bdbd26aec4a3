"""The program as a function, so Pulumi (``__main__``) and the tests run exactly the same code."""

from __future__ import annotations

from pathlib import Path

import pulumi

from infra.component import CallRecording, CallRecordingArgs
from infra.config import ConfigError, RecordingConfig, read_stack_config
from infra.package import PackageInfo, build_package, sha256_of


def resolve_package(cfg: RecordingConfig) -> PackageInfo | None:
    """The zip to deploy: the configured one, or a fresh deterministic build of functions/."""
    if not cfg.deploy_code:
        return None
    if cfg.package_path:
        path = Path(cfg.package_path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(
                "packagePath", f"packagePath ({cfg.package_path!r}) must be a zip file"
            )
        return PackageInfo(path, sha256_of(path), entries=0)
    return build_package()


def define(cfg: RecordingConfig, package: PackageInfo | None) -> dict[str, pulumi.Input[str]]:
    """Register every resource; returns the stack outputs."""
    recording = CallRecording(
        f"{cfg.name_prefix}-{cfg.stack}", CallRecordingArgs(config=cfg, package=package)
    )
    return recording.outputs()


def run() -> None:
    """Entry point of ``pulumi up/preview``: validate config first, then register, then export."""
    cfg = read_stack_config(pulumi.get_stack())
    outputs = define(cfg, resolve_package(cfg))
    for key, value in outputs.items():
        pulumi.export(key, value)
