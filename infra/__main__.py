"""Pulumi entry point: config -> CallRecording -> stack outputs (see infra/program.py).

Pulumi runs this file with infra/ as the program directory; the repository root goes on
sys.path so the program imports as the ``infra`` package, the same way the tests import it.
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pulumi  # noqa: E402 - after the sys.path entry, like the imports below

from infra.config import ConfigError  # noqa: E402
from infra.program import run  # noqa: E402

try:
    run()
except ConfigError as error:
    # RunError prints one line naming key, value and rule, without a traceback to hide it.
    raise pulumi.RunError(f"configuration error: {error}") from None
