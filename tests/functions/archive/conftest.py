"""Fixtures for the archiver: real Azurite, a real ranged-media server, the real SDKs.

Each test gets its own container, queues and table in the session's Azurite, and its own
synthetic media server on a free 127.0.0.1 port. ACS media URLs in the events keep their real
``https://<region>.asm.skype.com/...`` form; ``ACS_MEDIA_ENDPOINT_OVERRIDE`` routes them to the
server through the same override policy the local stack uses.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from local_runtime.media_server import MediaObject, SyntheticMediaServer
from local_runtime.processes import Azurite
from recording_pipeline.archive.events import parse_subject
from recording_pipeline.archive.media_source import RetrySchedule
from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema
from recording_pipeline.settings import Settings

RESOURCE_ID = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-archiver"
    "/providers/Microsoft.Communication/communicationServices/acs-archiver-tests"
)
ACCESS_KEY = base64.b64encode(b"archiver-test-key-0123456789abcd").decode()
MEDIA_HOST = "emu.asm.skype.com"
BLOCK_SIZE = 256 * 1024
FAST_RETRY = RetrySchedule(max_failures=6, base_delay_seconds=0.01, max_delay_seconds=0.05)
EVENT_TYPE = "Microsoft.Communication.RecordingFileStatusUpdated"


@dataclass
class ArchiveStack:
    """Settings plus direct clients on the same Azurite resources, for assertions."""

    settings: Settings
    env: dict[str, str]
    container: ContainerClient
    table: TableClient
    events_queue: QueueClient
    poison_queue: QueueClient

    def blob_names(self) -> list[str]:
        return sorted(blob.name for blob in self.container.list_blobs())

    def read_blob(self, name: str) -> bytes:
        return self.container.get_blob_client(name).download_blob().readall()

    def recording_entity(self, recording_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.table.get_entity(encode_id(recording_id), "recording"))
        except ResourceNotFoundError:
            return None

    def entities(self) -> list[dict[str, Any]]:
        return [dict(entity) for entity in self.table.list_entities()]

    def register(self, event: dict[str, Any]) -> None:
        """Write the registry row the API and a verified callback write for the event's
        recording (its server call id and call id), so the archiver can bind the event."""
        register_recording(self.table, *parse_subject(event["subject"]))

    def poison_envelopes(self) -> list[dict[str, Any]]:
        messages = self.poison_queue.peek_messages(max_messages=32)
        return [json.loads(message.content) for message in messages]


def register_recording(
    table: TableClient, call_id: str, server_call_id: str, recording_id: str
) -> None:
    """The recording's registry row as the API's start and a verified callback leave it."""
    table.upsert_entity(
        {
            **schema.recording_keys(recording_id),
            schema.RECORDING_ID: recording_id,
            schema.SERVER_CALL_ID: server_call_id,
            schema.CORRELATION_ID: call_id,
            schema.STATE: "stopped",
        }
    )


def make_archive_stack(
    azurite: Azurite,
    *,
    acs_endpoint: str,
    media_override: str,
    resource_id: str = RESOURCE_ID,
    access_key: str = ACCESS_KEY,
    delete_after_archive: bool = True,
    block_size: int = BLOCK_SIZE,
    concurrency: int = 2,
    events_queue: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> ArchiveStack:
    suffix = uuid.uuid4().hex[:10]
    env = {
        "ACS_ENDPOINT": acs_endpoint,
        "ACS_ACCESS_KEY": access_key,
        "ACS_RESOURCE_ID": resource_id,
        "ACS_IMMUTABLE_RESOURCE_ID": "00000000-aaaa-bbbb-cccc-000000000000",
        "ACS_MEDIA_ENDPOINT_OVERRIDE": media_override,
        "ARCHIVE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "RECORDINGS_CONTAINER": f"rec{suffix}",
        "EVENTS_QUEUE": events_queue or f"events{suffix}",
        "REGISTRY_TABLE": f"registry{suffix}",
        "DELETE_FROM_ACS_AFTER_ARCHIVE": "true" if delete_after_archive else "false",
        "ARCHIVE_BLOCK_SIZE_BYTES": str(block_size),
        "ARCHIVE_MAX_CONCURRENCY": str(concurrency),
        **(extra_env or {}),
    }
    settings = Settings.from_env(env)
    connection = azurite.connection_string
    container = ContainerClient.from_connection_string(connection, settings.recordings_container)
    container.create_container()
    table = TableClient.from_connection_string(connection, settings.registry_table)
    table.create_table()
    events = QueueClient.from_connection_string(connection, settings.events_queue)
    with contextlib.suppress(ResourceExistsError):
        events.create_queue()
    poison = QueueClient.from_connection_string(connection, settings.poison_queue)
    poison.create_queue()
    return ArchiveStack(settings, env, container, table, events, poison)


@pytest.fixture
def media_server() -> Iterator[SyntheticMediaServer]:
    server = SyntheticMediaServer().start_in_thread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack(azurite: Azurite, media_server: SyntheticMediaServer) -> ArchiveStack:
    return make_archive_stack(
        azurite, acs_endpoint=media_server.base_url, media_override=media_server.base_url
    )


@dataclass
class SyntheticChunk:
    document_id: str
    content: bytes
    metadata: dict[str, Any]

    @property
    def content_path(self) -> str:
        return f"/v1/objects/{self.document_id}/content/audio"

    @property
    def metadata_path(self) -> str:
        return f"/v1/objects/{self.document_id}/content/acsmetadata"

    @property
    def metadata_bytes(self) -> bytes:
        return json.dumps(self.metadata).encode()


@dataclass
class SyntheticRecording:
    call_id: str
    server_call_id: str
    recording_id: str
    start_time: datetime
    format_type: str
    chunks: list[SyntheticChunk] = field(default_factory=list)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def event(self, **overrides: Any) -> dict[str, Any]:
        event = {
            "id": self.event_id,
            "topic": RESOURCE_ID,
            "subject": (
                f"/recording/call/{self.call_id}/serverCallId/{self.server_call_id}"
                f"/recordingId/{self.recording_id}"
            ),
            "eventType": EVENT_TYPE,
            "eventTime": self.start_time.isoformat(),
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "data": {
                "recordingStorageInfo": {
                    "recordingChunks": [
                        {
                            "documentId": chunk.document_id,
                            "index": index,
                            "endReason": "SessionEnded"
                            if index == len(self.chunks) - 1
                            else "ChunkMaximumSizeExceeded",
                            "contentLocation": f"https://{MEDIA_HOST}{chunk.content_path}",
                            "metadataLocation": f"https://{MEDIA_HOST}{chunk.metadata_path}",
                            "deleteLocation": f"https://{MEDIA_HOST}/v1/objects/{chunk.document_id}",
                        }
                        for index, chunk in enumerate(self.chunks)
                    ]
                },
                "recordingStartTime": self.start_time.isoformat().replace("+00:00", "Z"),
                "recordingDurationMs": 1000 * len(self.chunks),
                "sessionEndReason": "CallEnded",
                "recordingContentType": "audio",
                "recordingChannelType": "unmixed",
                "recordingFormatType": self.format_type,
            },
        }
        event.update(overrides)
        return event

    def message(self, *, base64_encoded: bool = True, **overrides: Any) -> str:
        text = json.dumps(self.event(**overrides))
        return base64.b64encode(text.encode()).decode() if base64_encoded else text


def publish_recording(
    server: SyntheticMediaServer,
    chunk_sizes: list[int],
    *,
    format_type: str = "wav",
    participants: int = 2,
    recording_id: str | None = None,
    call_id: str | None = None,
    seed: int = 7,
    participant_ids: list[str] | None = None,
) -> SyntheticRecording:
    """Put a recording's chunks and metadata on the media server; return what ACS would announce."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 4, 23, 59, 30, tzinfo=UTC)
    recording = SyntheticRecording(
        call_id=call_id or str(uuid.uuid4()),
        server_call_id=base64.urlsafe_b64encode(f"conv/{uuid.uuid4()}".encode())
        .decode()
        .rstrip("="),
        recording_id=recording_id or base64.b64encode(rng.randbytes(45)).decode() + "+/=",
        start_time=start,
        format_type=format_type,
    )
    for index, size in enumerate(chunk_sizes):
        chunk = SyntheticChunk(
            document_id=f"0-emu-d{index}-{uuid.uuid4().hex}",
            content=rng.randbytes(size),
            metadata={
                "resourceId": "00000000-aaaa-bbbb-cccc-000000000000",
                "callId": recording.call_id,
                "chunkDocumentId": "",
                "chunkIndex": index,
                "chunkStartTime": (start + timedelta(seconds=index)).isoformat(),
                "chunkDuration": 1000,
                "pauseResumeIntervals": [
                    {
                        "startTime": (
                            start + timedelta(seconds=index, milliseconds=200)
                        ).isoformat(),
                        "duration": 300,
                    }
                ],
                "recordingInfo": {
                    "contentType": "audio",
                    "channelType": "unmixed",
                    "format": format_type,
                    "audioConfiguration": {"sampleRate": 16000, "bitRate": 256000, "channels": 5},
                },
                "participants": [
                    {"participantId": pid, "channel": channel}
                    for channel, pid in enumerate(
                        participant_ids or _participant_ids(index, participants)
                    )
                ],
            },
        )
        chunk.metadata["chunkDocumentId"] = chunk.document_id
        server.add(chunk.content_path, MediaObject.literal(chunk.content, "audio/wav"))
        server.add(
            chunk.metadata_path, MediaObject.literal(chunk.metadata_bytes, "application/json")
        )
        recording.chunks.append(chunk)
    return recording


def _participant_ids(chunk_index: int, count: int) -> list[str]:
    """One participant in every chunk, the others different per chunk (ids with ``/``)."""
    return ["8:acs:common-participant"] + [
        f"8:acs:{chunk_index}-{p}-participant/x" for p in range(1, count)
    ]


def md5_digest(data: bytes) -> bytes:
    """The digest Azure Storage keeps in Content-MD5 (an integrity check, not security)."""
    return hashlib.md5(data, usedforsecurity=False).digest()
