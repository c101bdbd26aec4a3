"""Emulator tests use the shared emulator fixtures from ``tests.support.emulator``.

Imported by name because ``pytest_plugins`` may only be declared in the root conftest.
"""

from tests.support.emulator import emulator, emulator_with_queue, shared_emulator  # noqa: F401
