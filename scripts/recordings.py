"""``python -m scripts.recordings``: the ``recordings`` command-line tool (``recordings_cli``)."""

from __future__ import annotations

import sys

from recordings_cli.cli import main

if __name__ == "__main__":
    sys.exit(main())
