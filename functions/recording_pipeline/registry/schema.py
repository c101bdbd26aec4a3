"""The registry table's schema: every key, property name and archive status, named once.

One table holds the recordings and a few kinds of index entity (docs/architecture.md), written by
four parties: the API (the recording's lifecycle properties, idempotency keys, the stopped-index
row), the archiver (the ``Archive*`` properties, the participant index, poison markers, the
pending-ACS-delete row), the reconciler (``overdue``/``lost``, its own bookkeeping) and the
operator's participant erase. Each
writer and reader takes its names from here, so a renamed property cannot drift between them;
the tests spell the names out literally, as the contract they are.
"""

from __future__ import annotations

import hashlib

from recording_pipeline.ids import encode_id
from recording_pipeline.input_rules import TABLE_KEY_MAX_CHARS

PARTITION_KEY = "PartitionKey"
ROW_KEY = "RowKey"

# --- keys ---------------------------------------------------------------------------------------

#: RowKey of a recording's entity; its PartitionKey is ``encode_id(recordingId)``.
RECORDING_ROW_KEY = "recording"
#: PartitionKey of the Idempotency-Key entities; their RowKey is ``encode_id(key)``.
IDEMPOTENCY_PARTITION = "idempotency"
#: PartitionKey prefix of the participant index; the RowKey is ``encode_id(recordingId)``.
PARTICIPANT_PARTITION_PREFIX = "participant-"
#: PartitionKey of the archiver's "poisoned once" markers; the RowKey is ``encode_id(messageId)``.
POISON_MARKER_PARTITION = "poison"
#: PartitionKey of "stopped, not yet archived": RowKey ``iso(stoppedAt) + "-" + encode_id(id)``,
#: so the partition reads oldest stop first (see :func:`time_ordered_row_key`, which also
#: shortens the ids that would not fit).
PENDING_ARCHIVE_PARTITION = "pending-archive"
#: PartitionKey of "archived, not yet deleted from ACS": RowKey ``iso(archivedAt) + "-" +
#: encode_id(id)``.
PENDING_ACS_DELETE_PARTITION = "pending-acs-delete"
#: PartitionKey of "a state change whose CloudEvent is not published yet" (an outbox): RowKey
#: ``iso(occurredAt) + "-" + eventName + "-" + encode_id(id)`` (see :func:`pending_event_row_key`).
PENDING_EVENT_PARTITION = "pending-event"
#: PartitionKey of the reconciler's replay counts of poison messages; RowKey: the body's SHA-256.
POISON_REPLAY_PARTITION = "poison-replay"
#: PartitionKey of dead-letter blobs re-enqueued whose index tag could not be written (a blob
#: holds at most 10 tags, a role may be missing); RowKey: the SHA-256 of the blob's name.
DEAD_LETTER_MARK_PARTITION = "dead-letter-mark"
#: PartitionKey of the reconciler's own state; RowKey :data:`SWEEP_ROW_KEY`.
RECONCILER_PARTITION = "reconciler"
SWEEP_ROW_KEY = "sweep"

# --- the recording entity: the API's properties -------------------------------------------------

RECORDING_ID = "RecordingId"
SERVER_CALL_ID = "ServerCallId"
CALL_CONNECTION_ID = "CallConnectionId"
#: The call's id (ACS ``correlationId``, the ``callId`` of recording files and their metadata),
#: from a verified callback: what the archiver binds a ``RecordingFileStatusUpdated`` event to.
CORRELATION_ID = "CorrelationId"
#: A call id a later callback named that differs from ``CorrelationId`` (JSON: the id, the
#: callback's event id and time): one of the two was forged, so the archiver binds nothing to
#: the recording (``archive.binding``) until a person decides.
CORRELATION_CONFLICT = "CorrelationConflict"
CONTENT_TYPE = "ContentType"
CHANNEL_TYPE = "ChannelType"
FORMAT_TYPE = "FormatType"
OPTIONS_JSON = "OptionsJson"
STATE = "State"
STATE_HISTORY_JSON = "StateHistoryJson"
FAILURE_REASON = "FailureReason"
CREATED_AT = "CreatedAt"
UPDATED_AT = "UpdatedAt"

# --- the recording entity: the archiver's properties --------------------------------------------

ARCHIVE_STATUS = "ArchiveStatus"
ARCHIVE_EVENT_ID = "ArchiveEventId"
CALL_ID = "CallId"
ARCHIVE_BLOB_PREFIX = "ArchiveBlobPrefix"
ARCHIVE_MANIFEST_BLOB = "ArchiveManifestBlob"
ARCHIVE_CHUNK_COUNT = "ArchiveChunkCount"
ARCHIVE_TOTAL_BYTES = "ArchiveTotalBytes"
ARCHIVED_AT = "ArchivedAt"
ARCHIVE_ERROR = "ArchiveError"
ARCHIVE_CHUNKS_JSON = "ArchiveChunksJson"
#: When the reconciler found the recording stopped with no event (kept after a late archive).
OVERDUE_AT = "OverdueAt"
#: What ``lost`` rests on (:data:`LOST_EVIDENCE_VALUES`); a ``lost`` without it is not trusted.
ARCHIVE_LOST_EVIDENCE = "ArchiveLostEvidence"

# --- an idempotency entity (also RECORDING_ID and CREATED_AT) ------------------------------------

REQUEST_HASH = "RequestHash"

# --- a participant-index entity (also RECORDING_ID and CALL_ID) ----------------------------------

PARTICIPANT_ID = "ParticipantId"
CHANNEL = "Channel"
CHANNELS_JSON = "ChannelsJson"
MANIFEST_BLOB = "ManifestBlob"
RECORDING_START_TIME = "RecordingStartTime"

# --- a poison marker ----------------------------------------------------------------------------

POISON_REASON = "Reason"
POISONED_AT = "PoisonedAt"

# --- index rows for the reconciler (also RECORDING_ID; a pending delete: MANIFEST_BLOB) ---------

STOPPED_AT = "StoppedAt"
REPLAY_COUNT = "ReplayCount"
#: A dead-letter mark: the blob, the bytes read and when.
BLOB_NAME = "BlobName"
RECONCILED_BYTES = "ReconciledBytes"
RECONCILED_AT = "ReconciledAt"
LAST_REPLAYED_AT = "LastReplayedAt"
LAST_SWEEP_AT = "LastSweepAt"

# --- a pending-event row (also RECORDING_ID and STOPPED_AT) ------------------------------------

#: The event's name without its prefix (``RecordingArchived``, ``RecordingLost``, ...).
EVENT_NAME = "EventName"
#: When the state change happened: the event's ``time``.
OCCURRED_AT = "OccurredAt"
#: Why (lost, failed, overdue): the event's ``reason``.
EVENT_REASON = "EventReason"

# --- archive statuses (``ArchiveStatus``) -------------------------------------------------------

STATUS_ARCHIVING = "archiving"
STATUS_ARCHIVED = "archived"
STATUS_LOST = "lost"
STATUS_FAILED = "failed"
STATUS_ERASED = "erased"
#: Set by the reconciler: stopped longer than the overdue time with no event seen.
STATUS_OVERDUE = "overdue"
#: Final: nothing the archiver does may change a row in one of these states.
FINAL_STATUSES = frozenset({STATUS_ARCHIVED, STATUS_ERASED})

# --- what a ``lost`` rests on (``ArchiveLostEvidence``) ----------------------------------------

#: The archiver checked the event against the registry and each chunk's metadata, then ACS
#: answered 404 for a document of that recording.
LOST_BY_VERIFIED_404 = "acs-404-after-verification"
#: The reconciler: stopped longer ago than ACS's retention window and never archived.
LOST_BY_RETENTION = "retention-window-passed"
LOST_EVIDENCE_VALUES = frozenset({LOST_BY_VERIFIED_404, LOST_BY_RETENTION})


def recording_keys(recording_id: str) -> dict[str, str]:
    """PartitionKey and RowKey of a recording's entity."""
    return {PARTITION_KEY: encode_id(recording_id), ROW_KEY: RECORDING_ROW_KEY}


def participant_partition_key(participant_id: str) -> str:
    return PARTICIPANT_PARTITION_PREFIX + encode_id(participant_id)


#: Separates a shortened id from its digest in an index RowKey; ``encode_id`` never writes it,
#: so a shortened key cannot equal the plain key of another id.
SHORTENED_ID_MARK = "~"


def time_ordered_row_key(at: str, recording_id: str) -> str:
    """RowKey of an index row: ``at`` (``clock.iso``, fixed width) then the encoded id.

    Table Storage returns a partition in RowKey order, so these rows come oldest first and a
    ``RowKey lt iso(cutoff)`` filter reads only those older than ``cutoff``.

    An id may take the whole 512 characters of a key once encoded (the rule ids meet), which
    leaves no room for the time in front of it: such an id is cut and followed by ``~`` and
    the SHA-256 of the whole id, so the key still starts with the time (order and cutoff hold),
    stays within the limit, and two ids that share the cut part still get two keys. The row
    itself keeps the whole id (``RecordingId``); the key is never decoded.
    """
    encoded = encode_id(recording_id)
    plain = f"{at}-{encoded}"
    if len(plain) <= TABLE_KEY_MAX_CHARS:
        return plain
    digest = hashlib.sha256(recording_id.encode("utf-8")).hexdigest()
    room = TABLE_KEY_MAX_CHARS - len(at) - 1 - len(SHORTENED_ID_MARK) - len(digest)
    return f"{at}-{encoded[:room]}{SHORTENED_ID_MARK}{digest}"


def pending_event_row_key(at: str, event_name: str, recording_id: str) -> str:
    """RowKey of a pending-event row: time first (oldest first), then the event's name (letters
    only, so the key is unambiguous), then the encoded id, cut as :func:`time_ordered_row_key`
    cuts it when the whole would pass the key limit."""
    return time_ordered_row_key(f"{at}-{event_name}", recording_id)
