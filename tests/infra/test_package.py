"""The Function App package: deterministic bytes, the app, host.json and the dependencies."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package import FUNCTIONS_DIR, SITE_PACKAGES, PackageError, build_package, iter_tree

REPO_ROOT = Path(__file__).resolve().parents[2]


def _make_package(functions_dir: Path, output: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "scripts.build_package", "--functions-dir", str(functions_dir),
         "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=280,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def app_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """functions/ as it is now: the app may be edited while the suite runs, the builds may not
    see two different versions of it."""
    snapshot = tmp_path_factory.mktemp("functions") / "functions"
    shutil.copytree(FUNCTIONS_DIR, snapshot)
    return snapshot


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory, app_snapshot: Path) -> tuple[Path, Path]:
    """`make package` twice, with the app's files touched in between (new mtimes)."""
    folder = tmp_path_factory.mktemp("package")
    first, second = folder / "first.zip", folder / "second.zip"
    _make_package(app_snapshot, first)
    for _, path in iter_tree(app_snapshot):
        os.utime(path)
    _make_package(app_snapshot, second)
    return first, second


def test_make_package_is_byte_identical_across_builds(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    assert first.read_bytes() == second.read_bytes()


def test_package_holds_the_app_host_json_and_the_dependencies(
    two_builds: tuple[Path, Path],
) -> None:
    names = set(zipfile.ZipFile(two_builds[0]).namelist())
    app_files = {name for name, _ in iter_tree(FUNCTIONS_DIR)}
    assert {"host.json", "function_app.py", "requirements.txt"} <= app_files
    assert app_files <= names
    deps = f"{SITE_PACKAGES}/"
    for module in ("azure/functions/__init__.py", "azure/communication/callautomation/__init__.py",
                   "azure/storage/blob/__init__.py", "fastapi/__init__.py"):  # fmt: skip
        assert deps + module in names, module
    # Native wheels must be the Linux x86_64 CPython 3.11 builds the workers load.
    native = [n for n in names if n.startswith(deps + "pydantic_core/") and n.endswith(".so")]
    assert native and all("cpython-311-x86_64-linux-gnu" in n for n in native), native


def test_package_has_no_bytecode_caches_or_local_settings(two_builds: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(two_builds[0]).namelist()
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "/__pycache__/" in n]
    assert not [n for n in names if n.endswith("local.settings.json")]
    assert not [n for n in names if n.startswith(f"{SITE_PACKAGES}/bin/")]
    assert names == sorted(names)


#: Settings the app validates at import; nothing is contacted while it loads.
_IMPORT_SETTINGS = {
    "ACS_ENDPOINT": "https://acs-example.communication.azure.com",
    "ACS_RESOURCE_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.Communication/communicationServices/acs-example",
    "ACS_IMMUTABLE_RESOURCE_ID": "6a1d0c3e-5f4b-4c8e-9a2d-0e6f7b8c9d10",
    "ARCHIVE_ACCOUNT_NAME": "acsrecarch1234",
    "EVENTS_QUEUE": "recording-events",
}


def test_the_packaged_app_loads_with_only_the_packaged_dependencies(
    two_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    """What the Functions worker does: import function_app from the package, with no site
    directory of this machine on the path (a runtime dependency missing from
    functions/requirements.txt, such as aiohttp for the aio clients, fails here)."""
    unpacked = tmp_path / "wwwroot"
    zipfile.ZipFile(two_builds[0]).extractall(unpacked)
    loader = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import function_app; "
        "import aiohttp; print(aiohttp.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", loader, str(unpacked), str(unpacked / SITE_PACKAGES)],
        env={"PATH": os.environ.get("PATH", ""), **_IMPORT_SETTINGS},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().startswith(str(unpacked / SITE_PACKAGES))


def test_build_excludes_local_files_and_fixes_metadata(tmp_path: Path) -> None:
    app = tmp_path / "functions"
    (app / "pkg" / "__pycache__").mkdir(parents=True)
    (app / "host.json").write_text('{"version": "2.0"}')
    (app / "requirements.txt").write_text("")
    (app / "function_app.py").write_text("app = None\n")
    (app / "pkg" / "mod.py").write_text("x = 1\n")
    (app / "pkg" / "mod.pyc").write_bytes(b"\0")
    (app / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (app / "local.settings.json").write_text('{"Values": {"ACS_ACCESS_KEY": "x"}}')
    (app / "function_app.py").chmod(0o700)

    info = build_package(app, tmp_path / "out.zip", with_dependencies=False)

    archive = zipfile.ZipFile(info.path)
    assert archive.namelist() == ["function_app.py", "host.json", "pkg/mod.py", "requirements.txt"]
    for entry in archive.infolist():
        assert entry.date_time == (1980, 1, 1, 0, 0, 0)
        assert stat.S_IMODE(entry.external_attr >> 16) == 0o644
    rebuilt = build_package(app, tmp_path / "again.zip", with_dependencies=False)
    assert rebuilt.sha256 == info.sha256


def test_build_refuses_a_folder_that_is_not_a_function_app(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"host\.json is missing"):
        build_package(tmp_path, tmp_path / "out.zip", with_dependencies=False)
