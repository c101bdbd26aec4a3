"""A reconciler test bed: its own table, containers and queues in the session's Azurite, the
module's emulator as ACS, and the real clients a run uses. Runs take ``now`` explicitly, so a
test can look at a recording 31 minutes or 26 hours after its stop without waiting."""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from local_runtime.processes import Azurite
from recording_pipeline.clock import iso
from recording_pipeline.ids import encode_id
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import ReconcileReport
from recording_pipeline.reconcile.run import ReconcileClients, run
from recording_pipeline.registry import schema
from recording_pipeline.registry.pending import PendingIndex
from recording_pipeline.settings import Settings
from tests.functions.archive.conftest import RESOURCE_ID, SyntheticChunk, SyntheticRecording
from tests.support.emulator import RunningEmulator

#: The moment tests call "now": recordings stop around it, runs happen relative to it.
T0 = datetime(2026, 5, 6, 7, 0, 0, tzinfo=UTC)


@dataclass
class Bed:
    env: dict[str, str]
    settings: Settings
    clients: ReconcileClients
    emulator: RunningEmulator
    policy: ReconcilePolicy = field(default_factory=ReconcilePolicy)

    @property
    def table(self) -> TableClient:
        return self.clients.table

    @property
    def pending(self) -> PendingIndex:
        return PendingIndex(self.table)

    def run(self, at: datetime, **options: Any) -> ReconcileReport:
        return run(self.clients, self.policy, now=at, **options)

    def entity(self, recording_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY))
        except ResourceNotFoundError:
            return None

    def put_recording(self, recording_id: str, **properties: Any) -> None:
        """A recording entity as the API and the archiver leave it (names as in the table)."""
        self.table.upsert_entity(
            {"PartitionKey": encode_id(recording_id), "RowKey": "recording", **properties}
        )

    def stopped(self, recording_id: str, at: datetime, **properties: Any) -> None:
        """A recording the API stopped at ``at``, indexed as the API indexes it."""
        history = [
            {"state": "active", "at": iso(at - timedelta(minutes=5)), "source": "api"},
            {"state": "stopped", "at": iso(at), "source": "api"},
        ]
        self.put_recording(
            recording_id,
            RecordingId=recording_id,
            State="stopped",
            StateHistoryJson=json.dumps(history),
            CreatedAt=iso(at - timedelta(minutes=5)),
            UpdatedAt=iso(at),
            **properties,
        )
        self.pending.add_stopped(recording_id, iso(at))

    def stopped_rows(self) -> list[str]:
        return [row.recording_id for row in self.pending.stopped_before(T0 + timedelta(days=30))]

    def poison_contents(self) -> list[str]:
        return [m.content for m in self.clients.poison.peek_messages(max_messages=32)]

    def queued_events(self) -> list[dict[str, Any]]:
        return [json.loads(m.content) for m in self.clients.events.peek_messages(max_messages=32)]


def synthetic_event(recording_id: str | None = None) -> SyntheticRecording:
    """An event the archiver would accept (topic :data:`RESOURCE_ID`, ACS media hosts)."""
    return SyntheticRecording(
        call_id=str(uuid.uuid4()),
        server_call_id="c2VydmVyLWNhbGw",
        recording_id=recording_id or f"rec-{uuid.uuid4().hex[:12]}+/=",
        start_time=T0 - timedelta(minutes=10),
        format_type="wav",
        chunks=[SyntheticChunk(f"0-emu-d0-{uuid.uuid4().hex}", b"", {})],
    )


@pytest.fixture
def bed(azurite: Azurite, module_emulator: RunningEmulator) -> Bed:
    return make_bed(azurite, module_emulator)


def make_bed(
    azurite: Azurite, module_emulator: RunningEmulator, extra_env: dict[str, str] | None = None
) -> Bed:
    """A fresh bed; ``extra_env`` adds settings (e.g. the events topic)."""
    module_emulator.simulation.set_faults([])  # none left over from an earlier test
    suffix = uuid.uuid4().hex[:10]
    env = {
        "ACS_ENDPOINT": module_emulator.endpoint,
        "ACS_ACCESS_KEY": module_emulator.access_key,
        "ACS_RESOURCE_ID": RESOURCE_ID,
        "ACS_IMMUTABLE_RESOURCE_ID": module_emulator.immutable_resource_id,
        "ACS_MEDIA_ENDPOINT_OVERRIDE": module_emulator.media_override_base_url,
        "ARCHIVE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "RECORDINGS_CONTAINER": f"rec{suffix}",
        "DEAD_LETTER_CONTAINER": f"dl{suffix}",
        "EVENTS_QUEUE": f"events{suffix}",
        "REGISTRY_TABLE": f"reconcile{suffix}",
        **(extra_env or {}),
    }
    settings = Settings.from_env(env)
    clients = ReconcileClients.from_settings(settings)
    clients.table.create_table()
    clients.recordings.create_container()
    for queue in (clients.events, clients.poison):
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
    return Bed(env, settings, clients, module_emulator)
