"""Hostile queue messages through the archiver's entry point, against Azurite and a media server:
never an exception (every unreadable message is rejected, not retried), and a rejected or
ignored message writes no blob and no registry row, only its poison marker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given

from local_runtime.media_server import SyntheticMediaServer
from local_runtime.processes import Azurite
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from tests.functions.archive.conftest import (
    FAST_RETRY,
    ArchiveStack,
    make_archive_stack,
    publish_recording,
)
from tests.functions.fuzz.strategies import FUZZ, queue_bodies


@pytest.fixture(scope="module")
def media() -> Iterator[SyntheticMediaServer]:
    server = SyntheticMediaServer().start_in_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(azurite: Azurite, media: SyntheticMediaServer) -> ArchiveStack:
    return make_archive_stack(azurite, acs_endpoint=media.base_url, media_override=media.base_url)


@pytest.fixture(scope="module")
def valid_event(media: SyntheticMediaServer) -> dict:
    """A real event whose chunks the media server holds: mutations of it reach every check."""
    return publish_recording(media, [1000, 1000]).event()


def written(stack: ArchiveStack) -> tuple[list[str], list[tuple[str, str]]]:
    """Blob names and every registry row but the poison markers."""
    rows = [(e["PartitionKey"], e["RowKey"]) for e in stack.entities()]
    return stack.blob_names(), sorted(row for row in rows if row[0] != "poison")


def test_archiver_entry_point(stack: ArchiveStack, valid_event: dict) -> None:
    @FUZZ
    @given(body=queue_bodies(valid_event))
    def check(body: str | bytes) -> None:
        before = written(stack)
        outcome = handle_event_message(
            body, message_id=str(uuid.uuid4()), settings=stack.settings, retry=FAST_RETRY
        )
        if outcome in (ArchiveOutcome.REJECTED, ArchiveOutcome.IGNORED):
            assert written(stack) == before

    check()
