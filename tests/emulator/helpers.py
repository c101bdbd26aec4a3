"""Small steps the emulator tests repeat: record a scripted call, fetch its chunks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.emulator import RunningEmulator


@dataclass
class Chunk:
    event_chunk: dict[str, Any]
    content: bytes
    metadata: dict[str, Any]


def download(client, url: str, **kwargs) -> bytes:
    return client.download_recording(url, **kwargs).read()


def fetch_chunks(emulator: RunningEmulator, client, event: dict[str, Any]) -> list[Chunk]:
    chunks = []
    for item in event["data"]["recordingStorageInfo"]["recordingChunks"]:
        chunks.append(
            Chunk(
                event_chunk=item,
                content=download(client, item["contentLocation"]),
                metadata=json.loads(download(client, item["metadataLocation"])),
            )
        )
    return chunks


def record(
    emulator: RunningEmulator,
    participants: list,
    seconds: float,
    **options: Any,
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Call with ``participants``, record ``seconds`` of it, stop; returns (call, id, event)."""
    call = emulator.simulation.create_call(participants)
    with emulator.sdk_client() as client:
        properties = client.start_recording(server_call_id=call["serverCallId"], **options)
        emulator.simulation.advance_clock(seconds)
        client.stop_recording(properties.recording_id)
    event = emulator.simulation.wait_for_event(properties.recording_id)
    return call, properties.recording_id, event
