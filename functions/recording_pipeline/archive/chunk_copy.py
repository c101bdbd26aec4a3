"""Copy one ACS media object into a block blob, block by block, never holding the whole object.

Why it is built this way:

- **Bounded memory.** One block (``ARCHIVE_BLOCK_SIZE_BYTES``) is read while the previous one is
  being staged, so at most two blocks of a chunk are in memory whatever the chunk's size, and a
  process-wide :class:`BlockBuffers` budget caps the total across parallel copies.
- **Deterministic block ids** (``layout.block_id``: offset, length and the running MD5
  state after the block). A redelivered event after a crash lists the blob's uncommitted blocks,
  takes the run of staged blocks from byte 0, restores the MD5 from the last one
  (``resumable_md5``) and continues reading from the byte after it: nothing is read or uploaded
  twice. Where the MD5 state cannot be recorded (a block size that is not a multiple of 64, no
  OpenSSL), staged blocks are still not uploaded again, but their bytes are read again to hash
  them.
- **Nothing half-written is visible.** Staged blocks are invisible until Put Block List; the
  list is committed only when every byte arrived and the size equals the source's, with the
  MD5 in ``Content-MD5`` and ``If-None-Match: *``, so of two concurrent copies exactly one
  commits. The other gets 409 and checks the committed blob (size and MD5) instead of failing.
- **A committed blob is final.** It is never overwritten; a committed blob whose size or MD5
  differs from the source is reported as :class:`ArchiveConflictError` for a human to look at.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContentSettings

from recording_pipeline.archive.layout import block_id, parse_block_id
from recording_pipeline.archive.media_source import MediaSource, SourceUnavailableError
from recording_pipeline.archive.resumable_md5 import NO_STATE, ResumableMd5, resumable_md5_available

LOGGER = logging.getLogger(__name__)


_IDENTIFYING_METADATA = ("kind", "recordingId", "chunkIndex", "documentId")


class ArchiveConflictError(Exception):
    """A committed blob exists under the target name but is not this source's bytes."""


@dataclass(frozen=True)
class CopiedBlob:
    """A committed, verified blob."""

    name: str
    size: int
    md5: bytes
    #: True when this call found the blob already committed (by an earlier or concurrent copy).
    already_committed: bool


@dataclass(frozen=True)
class BlobAttributes:
    """What the committed blob carries besides its bytes."""

    content_type: str
    metadata: dict[str, str]
    tags: dict[str, str]


class BlockBuffers:
    """Caps the block-sized buffers that all copies of this process hold at once.

    A copy holds at most two (one being read, one being staged), but chunks and messages are
    copied in parallel; the cap keeps peak memory near ``count * block_size`` whatever the
    parallelism. A copy never waits for a buffer while holding one that only it could free (a
    staged block frees its own), so the cap cannot deadlock.
    """

    def __init__(self, count: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, count))

    def acquire(self) -> None:
        self._slots.acquire()

    def release(self) -> None:
        self._slots.release()


def copy_to_block_blob(
    source: MediaSource,
    blob: BlobClient,
    attributes: BlobAttributes,
    *,
    block_size: int,
    buffers: BlockBuffers | None = None,
) -> CopiedBlob:
    """Stream ``source`` into ``blob`` and commit it once, verified.

    :raises ~recording_pipeline.archive.media_source.SourceGoneError: the source expired (404/410).
    :raises ~recording_pipeline.archive.media_source.SourceUnavailableError: retries exhausted.
    :raises ArchiveConflictError: a different committed blob already has this name.
    """
    existing = committed_blob(blob, attributes.metadata)
    if existing is not None:
        return existing
    buffers = buffers or BlockBuffers(2)
    staged = _staged_block_sizes(blob)
    md5, block_ids = _start_digest(resume_point(staged))
    offset = md5.length
    if offset:
        LOGGER.info(
            "%s: resuming at byte %d after %d staged blocks", blob.blob_name, offset, len(block_ids)
        )
    reused = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-block") as stager:
        pending: Future[None] | None = None
        while True:
            buffers.acquire()
            try:
                data = source.read_range(offset, block_size)
            except BaseException:
                buffers.release()
                raise
            total = source.total_size or 0
            md5.update(data)
            identifier = block_id(offset, len(data), md5.checkpoint())
            if data and staged.get(identifier) != len(data):
                if pending is not None:
                    pending.result()
                pending = stager.submit(_stage_block, blob, identifier, data, buffers)
            else:
                reused += 1 if data else 0
                buffers.release()
            if data:
                block_ids.append(identifier)
                offset += len(data)
            if offset >= total:
                break
            if not data:
                raise SourceUnavailableError(f"{source.url}: no bytes at {offset} of {total}")
        if pending is not None:
            pending.result()
    if offset != source.total_size:
        raise SourceUnavailableError(
            f"{source.url}: has {source.total_size} bytes but the copy reached {offset}"
        )
    if reused:
        LOGGER.info("%s: reused %d blocks staged by an earlier attempt", blob.blob_name, reused)
    return _commit(blob, block_ids, attributes, size=offset, md5=md5.digest())


@dataclass(frozen=True)
class ResumePoint:
    """Where a copy can continue: after ``block_ids``, with the MD5 state of that byte."""

    offset: int
    md5_state: str
    block_ids: tuple[str, ...]


def resume_point(staged: dict[str, int]) -> ResumePoint:
    """The longest run of staged blocks from byte 0 that ends with a recorded MD5 state."""
    by_offset: dict[int, list[tuple[int, str, str]]] = {}
    for identifier, size in staged.items():
        parsed = parse_block_id(identifier)
        if parsed is not None and parsed[1] == size and size > 0:
            by_offset.setdefault(parsed[0], []).append((parsed[1], parsed[2], identifier))
    best = ResumePoint(0, NO_STATE, ())
    offset, chain = 0, []
    while offset in by_offset:
        length, state, identifier = max(by_offset[offset])
        if state == NO_STATE:
            break
        chain.append(identifier)
        offset += length
        best = ResumePoint(offset, state, tuple(chain))
    return best


class _HashlibMd5:
    """Fallback when OpenSSL's MD5 struct is not reachable: same interface, no checkpoints."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.length = 0

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self.length += len(data)

    def checkpoint(self) -> str:
        return NO_STATE

    def digest(self) -> bytes:
        return self._md5.digest()


def _start_digest(resume: ResumePoint) -> tuple[ResumableMd5 | _HashlibMd5, list[str]]:
    if not resumable_md5_available():
        return _HashlibMd5(), []
    if resume.offset:
        return ResumableMd5.resume(resume.md5_state, resume.offset), list(resume.block_ids)
    return ResumableMd5(), []


def committed_blob(blob: BlobClient, expected_metadata: dict[str, str]) -> CopiedBlob | None:
    """The committed blob if it exists.

    The archiver commits only verified bytes, so a blob it committed (its identifying metadata
    matches) is taken as is; anything else under the name is a conflict for a human.
    """
    try:
        properties = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    md5 = properties.content_settings.content_md5
    if not md5:
        raise ArchiveConflictError(f"{blob.blob_name} exists without Content-MD5: not written here")
    mismatched = sorted(
        key
        for key in _IDENTIFYING_METADATA
        if key in expected_metadata and properties.metadata.get(key) != expected_metadata[key]
    )
    if mismatched:
        raise ArchiveConflictError(
            f"{blob.blob_name} exists with other {', '.join(mismatched)}: not this recording's copy"
        )
    return CopiedBlob(blob.blob_name, properties.size, bytes(md5), already_committed=True)


def _staged_block_sizes(blob: BlobClient) -> dict[str, int]:
    try:
        _, uncommitted = blob.get_block_list("uncommitted")
    except ResourceNotFoundError:
        return {}
    return {block.id: block.size for block in uncommitted}


def _stage_block(blob: BlobClient, identifier: str, data: bytes, buffers: BlockBuffers) -> None:
    try:
        # validate_content sends a per-block MD5 that the service checks on arrival.
        blob.stage_block(identifier, data, length=len(data), validate_content=True)
    finally:
        buffers.release()


def _commit(
    blob: BlobClient,
    block_ids: list[str],
    attributes: BlobAttributes,
    *,
    size: int,
    md5: bytes,
) -> CopiedBlob:
    try:
        blob.commit_block_list(
            [BlobBlock(block_id=identifier) for identifier in block_ids],
            content_settings=ContentSettings(
                content_type=attributes.content_type, content_md5=bytearray(md5)
            ),
            metadata=attributes.metadata,
            tags=attributes.tags,
            if_none_match="*",
        )
    except (ResourceExistsError, ResourceModifiedError):
        return _verify_concurrent_commit(blob, attributes, size=size, md5=md5)
    return CopiedBlob(blob.blob_name, size, md5, already_committed=False)


def _verify_concurrent_commit(
    blob: BlobClient, attributes: BlobAttributes, *, size: int, md5: bytes
) -> CopiedBlob:
    """Another copy committed first: fine if it holds the same bytes."""
    winner = committed_blob(blob, attributes.metadata)
    if winner is None or winner.size != size or winner.md5 != md5:
        raise ArchiveConflictError(
            f"{blob.blob_name} was committed concurrently with different content "
            f"(size {None if winner is None else winner.size}, expected {size})"
        )
    LOGGER.info("%s: committed concurrently by another copy; content verified", blob.blob_name)
    return winner
