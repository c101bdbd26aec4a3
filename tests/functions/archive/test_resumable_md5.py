"""The MD5 that can be checkpointed at a block boundary and resumed in another process."""

from __future__ import annotations

import hashlib
import random

import pytest

from local_runtime.media_server import MediaObject, SyntheticMediaServer
from recording_pipeline.archive import chunk_copy
from recording_pipeline.archive.chunk_copy import BlobAttributes, copy_to_block_blob
from recording_pipeline.archive.layout import parse_block_id
from recording_pipeline.archive.media_source import MediaSource
from recording_pipeline.archive.resumable_md5 import (
    NO_STATE,
    ResumableMd5,
    resumable_md5_available,
)
from recording_pipeline.clients import call_automation_client
from tests.functions.archive.conftest import BLOCK_SIZE, FAST_RETRY, MEDIA_HOST, ArchiveStack


def test_openssl_md5_is_reachable_here() -> None:
    # The archive's resume relies on it on this platform (Linux x86_64, OpenSSL 3).
    assert resumable_md5_available() is True


@pytest.mark.parametrize("split_blocks", [1, 7, 1000])
def test_checkpoint_and_resume_give_the_same_digest_as_hashlib(split_blocks: int) -> None:
    data = random.Random(split_blocks).randbytes(64 * 1000 + 13)
    split = 64 * split_blocks
    first = ResumableMd5()
    first.update(data[:split])
    state = first.checkpoint()
    assert state != NO_STATE and len(state) == 32

    resumed = ResumableMd5.resume(state, split)
    resumed.update(data[split:])

    assert resumed.digest() == hashlib.md5(data, usedforsecurity=False).digest()
    assert resumed.length == len(data)


def test_checkpoint_is_only_recorded_at_64_byte_boundaries() -> None:
    digest = ResumableMd5()
    digest.update(b"x" * 65)
    assert digest.checkpoint() == NO_STATE
    with pytest.raises(ValueError, match="64-byte boundary"):
        ResumableMd5.resume("ab" * 16, 65)
    with pytest.raises(ValueError, match="64-byte boundary"):
        ResumableMd5.resume(NO_STATE, 64)


def test_copy_falls_back_to_hashlib_without_openssl(
    stack: ArchiveStack, media_server: SyntheticMediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunk_copy, "resumable_md5_available", lambda: False)
    media = MediaObject(size=3 * BLOCK_SIZE + 5, seed=9)
    path = "/v1/objects/0-emu-d0-fallback/content/audio"
    media_server.add(path, media)
    client = call_automation_client(stack.settings, retry_total=0)
    blob = stack.container.get_blob_client("fallback/chunk-0000.wav")

    copied = copy_to_block_blob(
        MediaSource(client, f"https://{MEDIA_HOST}{path}", retry=FAST_RETRY),
        blob,
        BlobAttributes("audio/wav", {"kind": "content"}, {}),
        block_size=BLOCK_SIZE,
    )

    assert copied.md5 == media.md5()
    states = {parse_block_id(b.id)[2] for b in blob.get_block_list("committed")[0]}
    assert states == {NO_STATE}
