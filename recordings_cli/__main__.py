"""``python -m recordings_cli``: what ``scripts/recordings`` runs."""

import sys

from recordings_cli.cli import main
from recordings_cli.closed_stdout import run_until_reader_gone

sys.exit(run_until_reader_gone(main))
