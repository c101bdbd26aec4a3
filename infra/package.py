"""The Function App package: a deterministic zip of ``functions/`` plus its dependencies.

Deterministic (sorted entries, fixed timestamps and permissions, no bytecode) so the zip's
SHA-256 changes only when the code or a pinned dependency changes. The code deployment
redeploys on that hash, so a rebuild without a change never redeploys.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
DEFAULT_OUTPUT = REPO_ROOT / "dist" / "functionapp.zip"
SITE_PACKAGES = ".python_packages/lib/site-packages"
#: Platform of the Flex Consumption Python 3.11 workers.
PIP_PLATFORM_ARGS = (
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_28_x86_64",
    "--implementation", "cp",
    "--python-version", "3.11",
    "--only-binary=:all:",
)  # fmt: skip
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
#: Never shipped: caches, bytecode, local-only settings, virtualenvs, editor/tool state.
EXCLUDED_DIR_NAMES = frozenset(
    {"__pycache__", ".venv", "venv", ".python_packages", ".pytest_cache", ".mypy_cache",
     ".ruff_cache", ".git", ".vscode", ".idea", "tests"}
)  # fmt: skip
EXCLUDED_FILE_NAMES = frozenset({"local.settings.json", ".DS_Store", ".funcignore", ".gitignore"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
#: Console scripts pip writes with this machine's interpreter in the shebang; the app never
#: runs them.
EXCLUDED_SITE_PACKAGES_DIRS = frozenset({"bin"})


class PackageError(RuntimeError):
    """The package could not be built (missing app files or a failed dependency install)."""


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    sha256: str
    entries: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_shipped(relative: Path, excluded_dirs: frozenset[str]) -> bool:
    if any(part in excluded_dirs for part in relative.parts[:-1]):
        return False
    return relative.name not in EXCLUDED_FILE_NAMES and not relative.name.endswith(
        EXCLUDED_SUFFIXES
    )


def iter_tree(
    root: Path, prefix: str = "", excluded_dirs: frozenset[str] = EXCLUDED_DIR_NAMES
) -> Iterator[tuple[str, Path]]:
    """(archive name, file) for every shipped file under ``root``, in a stable order."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not path.is_symlink() and _is_shipped(relative, excluded_dirs):
            yield f"{prefix}{relative.as_posix()}", path


def install_dependencies(requirements: Path, target: Path) -> None:
    """pip-install the pinned runtime requirements for linux x86_64 / CPython 3.11 into target."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(target), *PIP_PLATFORM_ARGS, "-r", str(requirements),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(
            f"pip could not install {requirements} for linux x86_64/cp311 "
            f"(exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
        )


def write_zip(entries: list[tuple[str, Path]], output: Path) -> PackageInfo:
    """Write entries with fixed metadata; the same inputs give the same bytes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so the mode bits are honoured on Linux
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    partial.replace(output)
    return PackageInfo(output, sha256_of(output), len(entries))


def build_package(
    functions_dir: Path = FUNCTIONS_DIR,
    output: Path = DEFAULT_OUTPUT,
    *,
    with_dependencies: bool = True,
) -> PackageInfo:
    """Build the deployable zip: app files at the root, dependencies under SITE_PACKAGES."""
    for required in ("host.json", "requirements.txt"):
        if not (functions_dir / required).is_file():
            raise PackageError(f"{functions_dir / required} is missing: not a Function App")
    entries = list(iter_tree(functions_dir))
    with tempfile.TemporaryDirectory(prefix="functionapp-deps-") as scratch:
        if with_dependencies:
            target = Path(scratch) / "site-packages"
            install_dependencies(functions_dir / "requirements.txt", target)
            for directory in EXCLUDED_SITE_PACKAGES_DIRS:
                shutil.rmtree(target / directory, ignore_errors=True)
            # Dependencies keep their layout (a package may import its "tests"); bytecode goes.
            entries += list(iter_tree(target, f"{SITE_PACKAGES}/", frozenset({"__pycache__"})))
        return write_zip(entries, output)
