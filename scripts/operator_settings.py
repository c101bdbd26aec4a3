"""The settings of the operator tools (``replay_poison``, ``export_participant``), or one message.

Both tools read the Function App's own environment variables (``recording_pipeline.settings``)
so that an operator points them at the same storage the app uses. A missing or invalid setting
ends the tool with one message listing every problem and how to set them, never a traceback.
"""

from __future__ import annotations

import sys

from recording_pipeline.settings import Settings, SettingsError

EXIT_SETTINGS = 2


def read_settings(tool: str) -> Settings | None:
    """The validated settings, or None after printing what is missing (exit with 2 then)."""
    try:
        return Settings.from_env()
    except SettingsError as error:
        problems = "\n".join(f"  - {problem}" for problem in error.problems)
        print(
            f"{tool}: the Function App's settings are missing or invalid:\n{problems}\n"
            f"{tool} reads the same environment variables as the Function App (README, "
            '"Operations"). For `make up`\'s stack: `source .local/up.env` (or the file given '
            "as ENV_FILE). For Azure: ACS_ENDPOINT, ACS_RESOURCE_ID, ACS_IMMUTABLE_RESOURCE_ID, "
            "ARCHIVE_ACCOUNT_NAME and INGRESS_ACCOUNT_NAME from the Function App's settings, with "
            "your own `az login`.",
            file=sys.stderr,
        )
        return None
