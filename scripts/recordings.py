"""``python -m scripts.recordings``: the ``recordings`` command-line tool (``recordings_cli``)."""

from __future__ import annotations

import sys

from recordings_cli.cli import main
from recordings_cli.closed_stdout import run_until_reader_gone

if __name__ == "__main__":
    sys.exit(run_until_reader_gone(main))
