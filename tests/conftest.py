"""Shared fixtures: each folder's conftest adds its own; these start real local services."""

pytest_plugins = ["tests.support.azurite"]
