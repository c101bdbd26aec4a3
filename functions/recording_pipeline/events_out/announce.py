"""Announce a recording's state change: note it, let the flow make it, publish it, forget it.

Every flow that makes an announced state change follows the same three steps:

1. :meth:`RecordingEvents.intend`, *before* the change: a pending-event row (an outbox entry,
   ``registry.pending``) with the event's name, the time and the reason;
2. the change itself (``registry.archive_writes``); if the flow decides not to make it (the
   recording is already archived, an event arrived meanwhile), :meth:`RecordingEvents.cancel`;
3. :meth:`RecordingEvents.announce`: the event is built from what the registry (and, for an
   archive, the manifest) now holds, sent, and the row deleted once Event Grid accepted it.

A publish that fails is logged with :data:`EVENT_PUBLISH_FAILED_MARKER` at ERROR (the log alert
matches it) and leaves the row, and never fails the flow: the archive is complete whether or not
anyone was told. A publish that succeeded but whose row could not be deleted is a WARNING only: the
reconciler publishes the row again, with the same event id, which consumers drop. A crash between
any two steps leaves the row too. The reconciler publishes every row older than its grace time
(:meth:`RecordingEvents.republish`), so each change is published at least once. Only a change still
true is published late: a row whose recording has since moved on (failed, then archived by a replay)
or never got there (a crash before step 2) is dropped, and the later state's own event tells
consumers where the recording is.

One reconciler run announces through :meth:`RecordingEvents.for_one_run`: after the first
outage (a timeout, a dropped connection, a 5xx) it stops publishing for the rest of the run, so
a topic that accepts connections and never answers costs one timeout, not one per row; the rows
stay for the next run.

An erase is noted even where the operator's tool does not publish (``note_always``): the tool
may run without the topic's settings, and the reconciler, which runs with the app's settings
and identity, publishes the row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from recording_pipeline.clients import recording_events_client
from recording_pipeline.events_out.cloud_events import (
    EventName,
    RecordingFacts,
    archived_event,
    status_event,
)
from recording_pipeline.events_out.publisher import EventsPublisher
from recording_pipeline.failures import classify, describe
from recording_pipeline.ids import encode_id
from recording_pipeline.manifest_file import read_manifest
from recording_pipeline.registry import schema
from recording_pipeline.registry.pending import PendingEvent, PendingIndex
from recording_pipeline.settings import Settings

LOGGER = logging.getLogger(__name__)

#: Logged at ERROR level when an event could not be published; the log alert matches it.
EVENT_PUBLISH_FAILED_MARKER = "EVENT_PUBLISH_FAILED"


@dataclass(frozen=True)
class Outcome:
    """What became of one pending event: published, superseded (dropped) or failed (kept)."""

    published: bool = False
    superseded: bool = False
    error: str | None = None
    #: Not tried: publishing paused for the rest of this run after an outage (the row stays).
    skipped: bool = False


class RecordingEvents:
    """The announcer of one process: the topic's publisher (None: publishing is off), the
    registry, and the recordings container (manifests, and the files' URLs).

    :param source: the events' ``source`` (``ACS_RESOURCE_ID``).
    """

    def __init__(
        self,
        publisher: EventsPublisher | None,
        table: TableClient,
        recordings: ContainerClient,
        *,
        source: str,
        pause_on_outage: bool = False,
    ) -> None:
        self._publisher = publisher
        self._table = table
        self._recordings = recordings
        self._source = source
        self._pause_on_outage = pause_on_outage
        self._paused_by: str | None = None

    @property
    def enabled(self) -> bool:
        return self._publisher is not None

    @property
    def paused_by(self) -> str | None:
        """The outage that paused publishing for the rest of this run (None: not paused)."""
        return self._paused_by

    def for_one_run(self) -> RecordingEvents:
        """This announcer for one reconciler run: it stops publishing after the first outage."""
        return RecordingEvents(
            self._publisher,
            self._table,
            self._recordings,
            source=self._source,
            pause_on_outage=True,
        )

    def intend(
        self,
        name: EventName,
        recording_id: str,
        *,
        at: str,
        reason: str | None = None,
        stopped_at: str | None = None,
        note_always: bool = False,
    ) -> PendingEvent | None:
        """Note the change about to be made (nothing when publishing is off, unless
        ``note_always``: the row is then left for the reconciler, which may publish).

        :raises azure.core.exceptions.AzureError: the row could not be written; the flow fails
            before its change, as with any other registry write.
        """
        if self._publisher is None and not note_always:
            return None
        return PendingIndex(self._table).add_event(
            name.value, recording_id, at, reason=reason, stopped_at=stopped_at
        )

    def cancel(self, pending: PendingEvent | None) -> None:
        """The flow did not make the change: nothing to announce."""
        if pending is not None:
            PendingIndex(self._table).remove_event(pending)

    def announce(
        self, pending: PendingEvent | None, *, manifest: dict[str, Any] | None = None
    ) -> Outcome:
        """Publish the change just made; never raises (a failure is logged and left to the
        reconciler). ``manifest``: the stored manifest of an archive, when the caller has it.
        Without a publisher the row (``note_always``) stays for the reconciler."""
        if pending is None or self._publisher is None:
            return Outcome()
        if self._paused_by is not None:
            return self._skipped(pending)
        try:
            return self._publish(pending, manifest=manifest, check_state=manifest is None)
        except Exception as error:  # announcing must never fail the change it announces
            return self._failed(pending, describe(error))

    def republish(self, pending: PendingEvent) -> Outcome:
        """The reconciler's retry of a row left behind: published only if still true."""
        if self._paused_by is not None:
            return self._skipped(pending)
        try:
            return self._publish(pending, manifest=None, check_state=True)
        except Exception as error:  # one row must not stop the others
            return self._failed(pending, describe(error))

    def pending_before(self, cutoff: datetime) -> Any:
        """Rows of changes older than ``cutoff``, oldest first."""
        return PendingIndex(self._table).events_before(cutoff)

    def _publish(
        self, pending: PendingEvent, *, manifest: dict[str, Any] | None, check_state: bool
    ) -> Outcome:
        assert self._publisher is not None
        name = EventName(pending.event_name)
        entity = self._entity(pending.recording_id) if check_state else None
        if check_state and (entity is None or entity.get(schema.ARCHIVE_STATUS) != name.status):
            LOGGER.info(
                "recording %s is no longer %s; its %s event is not published late",
                pending.recording_id,
                name.status,
                name.value,
            )
            PendingIndex(self._table).remove_event(pending)
            return Outcome(superseded=True)
        event = self._build(pending, name, entity, manifest)
        if event is None:
            PendingIndex(self._table).remove_event(pending)
            return Outcome(superseded=True)
        self._publisher.publish(event)
        LOGGER.info("recording %s: %s published (id %s)", pending.recording_id, name, event["id"])
        try:
            PendingIndex(self._table).remove_event(pending)
        except Exception as error:  # published: only the row is left, and a repeat is harmless
            LOGGER.warning(
                "recording %s: %s published (id %s) but its pending row was not deleted (%s); "
                "the reconciler publishes it again with the same id, which consumers drop",
                pending.recording_id,
                name,
                event["id"],
                describe(error),
            )
        return Outcome(published=True)

    def _build(
        self,
        pending: PendingEvent,
        name: EventName,
        entity: dict[str, Any] | None,
        manifest: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        if name is EventName.ARCHIVED:
            if manifest is None:
                blob = str((entity or {}).get(schema.ARCHIVE_MANIFEST_BLOB) or "")
                manifest = read_manifest(self._recordings, blob) if blob else None
            if manifest is None:  # erased meanwhile: nothing left to announce as archived
                return None
            return archived_event(manifest, source=self._source, blob_url=self._blob_url)
        return status_event(
            name,
            _facts(pending.recording_id, entity or {}),
            source=self._source,
            occurred_at=pending.occurred_at,
            reason=pending.reason,
            stopped_at=pending.stopped_at,
        )

    def _blob_url(self, name: str) -> str:
        return str(self._recordings.get_blob_client(name).url)

    def _entity(self, recording_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY))
        except ResourceNotFoundError:
            return None

    def _failed(self, pending: PendingEvent, error: str) -> Outcome:
        LOGGER.error(
            "%s recording %s: %s not published (%s); the reconciler publishes it later",
            EVENT_PUBLISH_FAILED_MARKER,
            pending.recording_id,
            pending.event_name,
            error,
        )
        if self._pause_on_outage and classify(error) == "transient":
            self._paused_by = error
            LOGGER.warning(
                "events topic outage (%s): no more events published in this run; "
                "their rows stay for the next run",
                error,
            )
        return Outcome(error=error)

    def _skipped(self, pending: PendingEvent) -> Outcome:
        LOGGER.info(
            "recording %s: %s not tried (publishing paused in this run); its row stays",
            pending.recording_id,
            pending.event_name,
        )
        return Outcome(error=self._paused_by, skipped=True)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()


def _facts(recording_id: str, entity: dict[str, Any]) -> RecordingFacts:
    def text(key: str) -> str | None:
        value = entity.get(key)
        return str(value) if value else None

    return RecordingFacts(
        recording_id=recording_id,
        server_call_id=text(schema.SERVER_CALL_ID),
        call_id=text(schema.CALL_ID),
        content=text(schema.CONTENT_TYPE),
        channel=text(schema.CHANNEL_TYPE),
        format=text(schema.FORMAT_TYPE),
    )


def recording_events(
    settings: Settings, table: TableClient, recordings: ContainerClient
) -> RecordingEvents:
    """The announcer for these settings: publishing is off without a topic endpoint."""
    client = recording_events_client(settings)
    return RecordingEvents(
        EventsPublisher(client) if client is not None else None,
        table,
        recordings,
        source=settings.acs_resource_id,
    )
