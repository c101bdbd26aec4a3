"""The Makefile as a new user meets it: `make help` and the interpreter check of `make install`.

The install recipe runs for real in a copy of the Makefile in a temp dir, with stand-in Python
executables (shell scripts that answer the version query, create a venv and accept `pip install`),
so the check is exercised without touching this repository's `.venv`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make") or "make"
IMPORT_PATH_STAMP = ".venv/.stamps/import-path"


def _make(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _fake_python(path: Path, version: str) -> Path:
    """A stand-in interpreter: reports ``version``, creates a venv of itself, accepts pip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *version_info*) echo "{version}" ;;\n'
        '  *sysconfig*) echo "$(dirname "$0")/../site" ;;\n'
        '  "-m venv "*) mkdir -p "$3/bin" "$3/site" && cp "$0" "$3/bin/python" ;;\n'
        '  "-m pip "*) echo "pip $*" >> "$(dirname "$0")/pip.log" ;;\n'
        "  *) exit 3 ;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in (
        "Makefile",
        "requirements.txt",
        "functions/requirements.txt",
        "package.json",
        "package-lock.json",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def test_help_expands_make_variables() -> None:
    result = _make(REPO_ROOT, "help", "STACK=prod")
    assert result.returncode == 0, result.stderr
    assert "$(" not in result.stdout
    assert "pulumi preview of stack prod" in result.stdout
    assert "source .local/up.env" in result.stdout


def test_install_with_another_python_says_which_is_needed_and_changes_nothing(
    project: Path,
) -> None:
    python = _fake_python(project / "bin" / "python3.12", "3.12")

    result = _make(project, IMPORT_PATH_STAMP, f"PYTHON={python}")

    assert result.returncode == 2
    assert f"make install needs Python 3.11; PYTHON={python} is 3.12." in result.stderr
    assert "make install PYTHON=python3.11" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / ".venv").exists()
    assert not (project / IMPORT_PATH_STAMP).exists()


def test_install_with_no_working_python_says_so(project: Path) -> None:
    result = _make(project, IMPORT_PATH_STAMP, f"PYTHON={project / 'missing-python'}")

    assert result.returncode == 2
    assert "is not a working Python" in result.stderr


def test_a_venv_of_the_wrong_version_is_created_again(project: Path) -> None:
    _fake_python(project / ".venv" / "bin" / "python", "3.12")  # left by an earlier attempt
    python = _fake_python(project / "bin" / "python3.11", "3.11")

    result = _make(project, IMPORT_PATH_STAMP, f"PYTHON={python}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert ".venv is not a Python 3.11 virtualenv: creating it again" in result.stdout
    reported = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", "import sys; sys.version_info"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert reported == "3.11"
    assert "install" in (project / ".venv" / "bin" / "pip.log").read_text()
    assert (project / ".venv" / "site" / "acs_call_recording.pth").read_text().splitlines() == [
        str(project),
        str(project / "functions"),
    ]


def _fake_npm(folder: Path) -> Path:
    """A stand-in npm: ``npm ci`` logs the call and (re)creates node_modules, as the real one."""
    npm = folder / "npm"
    npm.parent.mkdir(parents=True, exist_ok=True)
    npm.write_text(
        "#!/bin/sh\n"
        'echo "npm $*" >> "$(dirname "$0")/npm.log"\n'
        "rm -rf node_modules && mkdir -p node_modules/.bin\n"
    )
    npm.chmod(0o755)
    return npm


def test_install_builds_again_what_was_deleted_and_nothing_else(project: Path) -> None:
    python = _fake_python(project / "bin" / "python3.11", "3.11")
    npm = _fake_npm(project / "npm-bin")
    env = {**os.environ, "PATH": f"{npm.parent}:{os.environ['PATH']}"}
    pip_log = project / ".venv" / "bin" / "pip.log"
    npm_log = npm.parent / "npm.log"

    def install() -> None:
        result = _make(project, "install", f"PYTHON={python}", env=env)
        assert result.returncode == 0, result.stdout + result.stderr

    install()
    install()  # nothing changed: nothing installed again
    assert pip_log.read_text().count("install") == 1
    assert npm_log.read_text().count("npm ci") == 1

    shutil.rmtree(project / ".venv")
    install()
    assert pip_log.read_text().count("install") == 1  # a new venv, and its packages installed
    assert (project / ".venv" / "site" / "acs_call_recording.pth").exists()
    assert npm_log.read_text().count("npm ci") == 1

    shutil.rmtree(project / "node_modules")
    install()
    assert npm_log.read_text().count("npm ci") == 2
    assert pip_log.read_text().count("install") == 1


#: ``make TARGET ...`` as a reader meets it: inline code, or a line of a code block.
_MAKE_COMMANDS = (
    re.compile(r"`make ([a-z][a-z-]*)((?: [^`]*)?)`"),
    re.compile(r"^(?:\$ )?make ([a-z][a-z-]*)((?: [^#\n]*)?)", re.M),
)


def test_every_make_command_in_the_docs_uses_targets_and_variables_the_makefile_has() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    variables = set(re.findall(r"^([A-Z_]+) \?=", makefile, re.M))
    variables |= set(re.findall(r"\$\(([A-Z_]+)\)", makefile))
    commands = [
        (doc.name, match.group(1), match.group(2).split())
        for doc in (REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"))
        for pattern in _MAKE_COMMANDS
        for match in pattern.finditer(doc.read_text())
    ]
    wrong = [
        f"{doc}: make {target} {' '.join(words)}"
        for doc, target, words in commands
        if target not in targets
        or any(
            not re.fullmatch(r"[A-Z_]+=\S*", word) or word.split("=")[0] not in variables
            for word in words
        )
    ]

    assert len(commands) > 10
    assert wrong == []
