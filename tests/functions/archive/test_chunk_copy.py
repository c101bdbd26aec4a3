"""The ranged copy into staged blocks: commit conditions, resume, conflicts, odd sources."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from azure.communication.callautomation import CallAutomationClient
from azure.storage.blob import BlobClient, ContentSettings

from local_runtime.media_server import Fault, MediaObject, SyntheticMediaServer
from recording_pipeline.archive.chunk_copy import (
    ArchiveConflictError,
    BlobAttributes,
    BlockBuffers,
    CopiedBlob,
    copy_to_block_blob,
    resume_point,
)
from recording_pipeline.archive.layout import block_id, parse_block_id
from recording_pipeline.archive.media_source import (
    MediaSource,
    RetrySchedule,
    SourceGoneError,
    SourceUnavailableError,
)
from recording_pipeline.clients import call_automation_client
from tests.functions.archive.conftest import (
    BLOCK_SIZE,
    FAST_RETRY,
    MEDIA_HOST,
    ArchiveStack,
    md5_digest,
)

ATTRIBUTES = BlobAttributes(
    "audio/wav", {"kind": "content", "recordingId": "rec-1"}, {"kind": "content"}
)
PATH = "/v1/objects/0-emu-d0-copy/content/audio"
URL = f"https://{MEDIA_HOST}{PATH}"


@pytest.fixture
def media_client(stack: ArchiveStack) -> CallAutomationClient:
    return call_automation_client(stack.settings, retry_total=0)


def source(client: CallAutomationClient, retry: RetrySchedule = FAST_RETRY) -> MediaSource:
    return MediaSource(client, URL, retry=retry)


def blob(stack: ArchiveStack, name: str = "copy/chunk-0000.wav") -> BlobClient:
    return stack.container.get_blob_client(name)


def test_two_concurrent_copies_commit_once_and_both_succeed(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media = MediaObject(size=6 * BLOCK_SIZE + 99, seed=11)
    media_server.add(PATH, media)
    results: list[CopiedBlob] = []
    barrier = threading.Barrier(2)

    def copy() -> None:
        barrier.wait()
        results.append(
            copy_to_block_blob(source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE)
        )

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 2
    assert sorted(r.already_committed for r in results) == [False, True]
    assert {r.md5 for r in results} == {media.md5()}
    assert blob(stack).download_blob().readall() == b"".join(media.pieces(0, media.size - 1))


def test_a_committed_blob_not_written_for_this_chunk_is_never_overwritten(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media_server.add(PATH, MediaObject(size=BLOCK_SIZE, seed=1))
    other = b"someone else's bytes"
    blob(stack).upload_blob(other, metadata={"kind": "content", "recordingId": "another"})
    with pytest.raises(ArchiveConflictError, match="exists with other recordingId"):
        copy_to_block_blob(source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE)
    assert blob(stack).download_blob().readall() == other

    unverified = blob(stack, "copy/no-md5.wav")
    unverified.stage_block("b1", b"abc")
    unverified.commit_block_list(["b1"])
    with pytest.raises(ArchiveConflictError, match="without Content-MD5"):
        copy_to_block_blob(source(media_client), unverified, ATTRIBUTES, block_size=BLOCK_SIZE)
    assert unverified.download_blob().readall() == b"abc"
    assert media_server.requests == []


def test_a_concurrent_commit_of_other_content_is_a_conflict(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media_server.add(PATH, MediaObject(size=2 * BLOCK_SIZE, seed=2))
    target = blob(stack)
    other = b"x" * 10
    original_commit = target.commit_block_list

    def commit_after_someone_else(*args, **kwargs):
        target.upload_blob(
            other,
            overwrite=True,
            metadata=ATTRIBUTES.metadata,
            content_settings=ContentSettings(content_md5=bytearray(md5_digest(other))),
        )
        return original_commit(*args, **kwargs)

    target.commit_block_list = commit_after_someone_else  # type: ignore[method-assign]
    with pytest.raises(ArchiveConflictError, match="committed concurrently with different"):
        copy_to_block_blob(source(media_client), target, ATTRIBUTES, block_size=BLOCK_SIZE)
    assert blob(stack).download_blob().readall() == other


def test_empty_source_becomes_an_empty_verified_blob(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media_server.add(PATH, MediaObject.literal(b""))
    copied = copy_to_block_blob(
        source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE
    )
    assert copied.size == 0
    assert copied.md5 == md5_digest(b"")
    assert blob(stack).download_blob().readall() == b""


def interrupt_copy_at_block_3(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    media_client: CallAutomationClient,
    block_size: int,
) -> MediaObject:
    """A copy whose connection dies at the same byte of block 3 again and again: it gives up."""
    media = MediaObject(size=5 * block_size + 7, seed=3)
    media_server.add(PATH, media)
    media_server.add_fault(PATH, Fault(drop_at=3 * block_size + 10, times=100))
    with pytest.raises(SourceUnavailableError, match="attempts without progress"):
        copy_to_block_blob(source(media_client), blob(stack), ATTRIBUTES, block_size=block_size)
    assert blob(stack).exists() is False
    staged = [parse_block_id(b.id) for b in blob(stack).get_block_list("uncommitted")[1]]
    assert [(offset, length) for offset, length, _ in staged] == [
        (i * block_size, block_size) for i in range(3)
    ]
    media_server.faults.clear()
    media_server.requests.clear()
    return media


def test_redelivered_copy_resumes_after_the_staged_blocks_without_reading_them(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    media_client: CallAutomationClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    media = interrupt_copy_at_block_3(stack, media_server, media_client, BLOCK_SIZE)
    staged = [b.id for b in blob(stack).get_block_list("uncommitted")[1]]

    with caplog.at_level(logging.INFO, logger="recording_pipeline.archive.chunk_copy"):
        copied = copy_to_block_blob(
            source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE
        )

    assert f"resuming at byte {3 * BLOCK_SIZE} after 3 staged blocks" in caplog.text
    starts = [int(h.removeprefix("bytes=").split("-")[0]) for h in media_server.get_requests(PATH)]
    assert min(starts) == 3 * BLOCK_SIZE, "bytes already staged were read again"
    assert copied.md5 == media.md5()
    assert blob(stack).download_blob().readall() == b"".join(media.pieces(0, media.size - 1))
    committed = [b.id for b in blob(stack).get_block_list("committed")[0]]
    assert committed[:3] == staged and len(committed) == 6


def test_without_an_md5_checkpoint_staged_blocks_are_reread_but_not_uploaded_again(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    media_client: CallAutomationClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A block size that is not a multiple of 64 bytes leaves no MD5 state to resume from.
    odd_block = BLOCK_SIZE + 1
    media = interrupt_copy_at_block_3(stack, media_server, media_client, odd_block)
    with caplog.at_level(logging.INFO, logger="recording_pipeline.archive.chunk_copy"):
        copied = copy_to_block_blob(
            source(media_client), blob(stack), ATTRIBUTES, block_size=odd_block
        )
    assert "reused 3 blocks" in caplog.text
    assert "resuming at byte" not in caplog.text
    assert media_server.get_requests(PATH)[0] == f"bytes=0-{odd_block - 1}"
    assert copied.md5 == media.md5()


def test_resume_point_takes_the_run_of_staged_blocks_from_byte_zero() -> None:
    state = "ab" * 16
    staged = {
        block_id(0, 128, state): 128,
        block_id(128, 64, "cd" * 16): 64,
        block_id(192, 64): 64,  # no state recorded: the run ends before it
        block_id(512, 64, state): 64,  # not contiguous
        block_id(256, 64, state): 63,  # size does not match the id
    }
    point = resume_point(staged)
    assert point.offset == 192
    assert point.md5_state == "cd" * 16
    assert point.block_ids == (block_id(0, 128, state), block_id(128, 64, "cd" * 16))
    assert resume_point({}).offset == 0


@pytest.mark.parametrize("status", [404, 410])
def test_expired_source_raises_source_gone(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    media_client: CallAutomationClient,
    status: int,
) -> None:
    if status == 410:
        media_server.add(PATH, MediaObject.literal(b"abc"))
        media_server.add_fault(PATH, Fault(status=410))
    with pytest.raises(SourceGoneError) as raised:
        copy_to_block_blob(source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE)
    assert raised.value.status == status
    assert blob(stack).exists() is False


def test_auth_errors_are_not_retried_here(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media_server.add(PATH, MediaObject.literal(b"abc"))
    media_server.add_fault(PATH, Fault(status=401, times=5))
    with pytest.raises(Exception, match=r"401|Unauthorized|authentication"):
        copy_to_block_blob(source(media_client), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE)
    assert len(media_server.get_requests(PATH)) == 1


def test_progress_resets_the_failure_count(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media = MediaObject(size=BLOCK_SIZE, seed=4)
    media_server.add(PATH, media)
    # More drops than max_failures in total, but each one after new bytes arrived.
    for offset in range(1000, 9000, 1000):
        media_server.add_fault(PATH, Fault(drop_at=offset))
    retry = RetrySchedule(max_failures=2, base_delay_seconds=0.001, max_delay_seconds=0.001)
    copied = copy_to_block_blob(
        source(media_client, retry), blob(stack), ATTRIBUTES, block_size=BLOCK_SIZE
    )
    assert copied.md5 == media.md5()
    assert len(media_server.get_requests(PATH)) == 9


def test_retry_schedule_honours_retry_after_and_caps_backoff() -> None:
    schedule = RetrySchedule(base_delay_seconds=1, max_delay_seconds=4, max_retry_after_seconds=60)
    assert schedule.delay(1, 7.0) == 7.0
    assert schedule.delay(1, 600.0) == 60
    assert 0.5 <= schedule.delay(1, None) <= 1
    assert 2 <= schedule.delay(10, None) <= 4


def test_retry_after_as_an_http_date_is_understood(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    media_server.add(PATH, MediaObject.literal(b"hello"))
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    media_server.add_fault(PATH, Fault(status=429, retry_after=later))
    slept: list[float] = []
    media = MediaSource(media_client, URL, retry=FAST_RETRY, sleep=slept.append)
    assert bytes(media.read_range(0, 100)) == b"hello"
    assert len(slept) == 1 and 25 <= slept[0] <= 30


def test_copies_sharing_one_buffer_finish_without_deadlock(
    stack: ArchiveStack, media_server: SyntheticMediaServer, media_client: CallAutomationClient
) -> None:
    buffers = BlockBuffers(1)
    objects = {f"/v1/objects/0-emu-d{n}-shared/content/audio": n for n in range(3)}
    for path, seed in objects.items():
        media_server.add(path, MediaObject(size=3 * BLOCK_SIZE + seed, seed=seed))
    results: dict[str, CopiedBlob] = {}

    def copy(path: str) -> None:
        media = MediaSource(media_client, f"https://{MEDIA_HOST}{path}", retry=FAST_RETRY)
        results[path] = copy_to_block_blob(
            media, blob(stack, path.strip("/")), ATTRIBUTES, block_size=BLOCK_SIZE, buffers=buffers
        )

    threads = [threading.Thread(target=copy, args=(path,)) for path in objects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert {path: r.md5 for path, r in results.items()} == {
        path: MediaObject(size=3 * BLOCK_SIZE + seed, seed=seed).md5()
        for path, seed in objects.items()
    }
