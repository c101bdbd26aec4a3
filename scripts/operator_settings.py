"""The settings of the operator tools (``replay_poison``, ``export_participant``, ``reconcile``),
or one message.

The tools read the Function App's own environment variables (``recording_pipeline.settings``)
so that an operator points them at the same storage the app uses; each takes the same
``--connection-string`` to point the storage calls at another account (Azurite's, locally). A
missing or invalid setting ends the tool with one message listing every problem and how to set
them, and a malformed ``--connection-string`` with one line saying which rule it breaks; never a
traceback, and never the value (it holds a key).
"""

from __future__ import annotations

import argparse
import os
import sys

from recording_pipeline.settings import Settings, SettingsError, check_storage_connection_string

EXIT_SETTINGS = 2
CONNECTION_STRING_SETTING = "ARCHIVE_STORAGE_CONNECTION_STRING"


def add_connection_string_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--connection-string`` every operator tool has, with the same meaning."""
    parser.add_argument(
        "--connection-string",
        metavar="CONNECTION_STRING",
        help=f"archive storage connection string, instead of {CONNECTION_STRING_SETTING} or "
        "ARCHIVE_ACCOUNT_NAME (locally: Azurite's, which `make up` prints)",
    )


def read_settings(tool: str, connection_string: str | None = None) -> Settings | None:
    """The validated settings, or None after printing what is wrong (exit with 2 then).

    :param connection_string: ``--connection-string``; it replaces the storage settings of the
        environment (``ARCHIVE_ACCOUNT_NAME`` and ``INGRESS_ACCOUNT_NAME``, or
        ``ARCHIVE_STORAGE_CONNECTION_STRING``).
    """
    environ = dict(os.environ)
    if connection_string is not None:
        try:
            check_storage_connection_string(connection_string)
        except ValueError as error:
            print(f"{tool}: --connection-string {error}", file=sys.stderr)
            return None
        environ[CONNECTION_STRING_SETTING] = connection_string
        for setting in ("ARCHIVE_ACCOUNT_NAME", "INGRESS_ACCOUNT_NAME"):
            environ.pop(setting, None)
    try:
        return Settings.from_env(environ)
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
