"""Events out: the module's emulator as the Event Grid custom topic, an archive stack (Azurite
and the synthetic media server, as the archiver's own tests use) that publishes to it."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient

from local_runtime.media_server import SyntheticMediaServer
from local_runtime.processes import Azurite
from recording_pipeline.registry.pending import PendingEvent, PendingIndex
from tests.functions.archive import conftest as archive_fixtures
from tests.functions.archive.conftest import ArchiveStack, make_archive_stack
from tests.support.emulator import RunningEmulator

#: The archiver tests' synthetic media server (ACS's media, locally), for this folder too.
media_server = archive_fixtures.media_server


def topic_env(emulator: RunningEmulator, *, key: str | None = None) -> dict[str, str]:
    """The settings that make the function code publish to ``emulator``'s topic."""
    return {
        "RECORDING_EVENTS_TOPIC_ENDPOINT": emulator.topic_endpoint,
        "RECORDING_EVENTS_TOPIC_KEY": key or emulator.topic_key,
    }


def published(emulator: RunningEmulator) -> list[dict[str, Any]]:
    """The CloudEvents the topic accepted, oldest first."""
    return [item["event"] for item in emulator.simulation.topic_events()]


def pending_events(stack: ArchiveStack) -> list[PendingEvent]:
    return list(PendingIndex(stack.table).events_before(datetime(2999, 1, 1, tzinfo=UTC)))


@pytest.fixture
def topic(module_emulator: RunningEmulator) -> RunningEmulator:
    """The module's emulator, its topic emptied and its faults cleared."""
    module_emulator.simulation.reset()
    return module_emulator


def events_stack_for(
    azurite: Azurite, media_server: SyntheticMediaServer, env: dict[str, str]
) -> ArchiveStack:
    """An archive stack with its own dead-letter container too, so a whole reconciler run works."""
    stack = make_archive_stack(
        azurite,
        acs_endpoint=media_server.base_url,
        media_override=media_server.base_url,
        extra_env={"DEAD_LETTER_CONTAINER": f"dl{uuid.uuid4().hex[:10]}", **env},
    )
    dead_letters = ContainerClient.from_connection_string(
        azurite.connection_string, stack.settings.dead_letter_container
    )
    with contextlib.suppress(ResourceExistsError):
        dead_letters.create_container()
    return stack


@pytest.fixture
def events_stack(
    azurite: Azurite, media_server: SyntheticMediaServer, topic: RunningEmulator
) -> ArchiveStack:
    return events_stack_for(azurite, media_server, topic_env(topic))
