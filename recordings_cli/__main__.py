"""``python -m recordings_cli``: what ``scripts/recordings`` runs."""

import sys

from recordings_cli.cli import main

sys.exit(main())
