"""Where a recording lives in the archive container, and the names of its staged blocks.

Layout (docs/architecture.md)::

    {yyyy}/{mm}/{dd}/{encode_id(callId)}/{encode_id(recordingId)}/
        chunk-{index:04d}.{wav|mp3|mp4}
        chunk-{index:04d}.metadata.json
        manifest.json            <- written last: its presence means "complete"

The date is the UTC date of ``recordingStartTime``. Every id goes through ``ids.encode_id``, so a
``/`` in a recording id (standard base64) stays inside one path segment and no id can add or
escape a folder; ``ids.decode_id`` turns a segment back into the id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from recording_pipeline.archive.resumable_md5 import NO_STATE
from recording_pipeline.ids import encode_id
from recording_pipeline.manifest_file import MANIFEST_NAME

# Fixed-width so every block id of a blob has the same length (Put Block List requires it; 63
# characters, under the 64-byte limit) and deterministic (offset, length, and the MD5 state after
# the block, all functions of the source bytes) so a redelivered event finds and trusts the blocks
# a crashed attempt already staged.
_BLOCK_ID_FORMAT = "v2-{offset:016d}-{length:010d}-{md5_state}"
_BLOCK_ID = re.compile(r"v2-(\d{16})-(\d{10})-([0-9a-f]{32})")


def recording_prefix(call_id: str, recording_id: str, recording_start_time: datetime) -> str:
    """The folder of one recording, ending in ``/``."""
    day = recording_start_time.astimezone(UTC)
    return f"{day:%Y/%m/%d}/{encode_id(call_id)}/{encode_id(recording_id)}/"


def content_blob_name(prefix: str, chunk_index: int, format_type: str) -> str:
    return f"{prefix}chunk-{chunk_index:04d}.{format_type}"


def metadata_blob_name(prefix: str, chunk_index: int) -> str:
    return f"{prefix}chunk-{chunk_index:04d}.metadata.json"


def manifest_blob_name(prefix: str) -> str:
    return f"{prefix}{MANIFEST_NAME}"


def longest_file_name(chunks: int) -> str:
    """The longest name in the folder of a recording of ``chunks`` chunks (its last metadata)."""
    return metadata_blob_name("", max(chunks - 1, 0))


def block_id(offset: int, length: int, md5_state: str = NO_STATE) -> str:
    """The id of the block holding source bytes ``[offset, offset + length)``.

    ``md5_state`` is the running MD5 of the whole object after this block (see
    ``resumable_md5``), or all zeros when it could not be recorded.
    """
    return _BLOCK_ID_FORMAT.format(offset=offset, length=length, md5_state=md5_state)


def parse_block_id(identifier: str) -> tuple[int, int, str] | None:
    """``(offset, length, md5_state)`` of an id made by :func:`block_id`, else None."""
    match = _BLOCK_ID.fullmatch(identifier)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.group(3)


def content_mime_type(format_type: str) -> str:
    return {"wav": "audio/wav", "mp3": "audio/mpeg", "mp4": "video/mp4"}[format_type]
