"""Replay poisoned events whose failure was an outage, a bounded number of times.

Two kinds of message sit in the poison queue:

- the archiver's envelopes (JSON with ``reason`` and ``body``, ``archive.poison``) for input that
  can never succeed (malformed, foreign topic, disallowed host): left alone, always;
- original bodies the Functions host (or the local worker) moved after ``maxDequeueCount``
  failed attempts. The archiver's last attempt wrote why into the registry (``ArchiveError``,
  ``failures.describe``); :func:`failures.classify` says whether that was an outage.

A moved message is then, by what the registry says of its recording:

- archived or erased, or lost on evidence (``archive_writes.is_settled``: the archiver saw ACS
  answer 404 for a verified recording, or the retention window passed): done; deleted from the
  poison queue. A ``lost`` without that evidence is replayed like an outage: ACS may still hold
  the recording, and its real event must not be thrown away;
- failed for good (a refusal: credentials, a conflict, a missing container): left for a person;
- failed by an outage, or with no failure written (the last attempt crashed, or the table was
  down too): put back on the events queue and deleted from the poison queue, if it has been
  replayed fewer than ``max_poison_replays`` times and the spacing after the previous replay
  has passed; else left (waiting, or exhausted: for a person).

Replays are counted in the registry by the SHA-256 of the body (the host gives the message a new
id each time it moves it) before the message is sent, so an interrupted run can only use up a
replay, never replay without counting. Messages are taken with a lease (received, invisible to
others) and the ones left behind are made visible again at the end of the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, QueueMessage

from recording_pipeline.archive.events import (
    InvalidEventError,
    UnsupportedEventTypeError,
    parse_event_message,
)
from recording_pipeline.clock import iso
from recording_pipeline.failures import classify
from recording_pipeline.ids import encode_id
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import PoisonReport
from recording_pipeline.registry import schema
from recording_pipeline.registry.archive_writes import is_settled
from recording_pipeline.registry.pending import PendingIndex

LOGGER = logging.getLogger(__name__)

#: Seconds a received message stays invisible while the run decides about it.
LEASE_SECONDS = 300


def replay_poison(
    poison: QueueClient,
    events: QueueClient,
    table: TableClient,
    report: PoisonReport,
    *,
    policy: ReconcilePolicy,
    resource_id: str,
    now: datetime,
    dry_run: bool,
) -> None:
    """Decide about every poison message (up to the per-run limit); see the module docstring."""
    left: list[QueueMessage] = []
    seen = 0
    try:
        while seen < policy.max_items_per_step:
            batch = list(
                poison.receive_messages(
                    max_messages=min(32, policy.max_items_per_step - seen),
                    visibility_timeout=LEASE_SECONDS,
                )
            )
            if not batch:
                return
            for message in batch:
                seen += 1
                action, replay = _decide(message, table, report, policy, resource_id, now)
                if action == "leave" or dry_run:
                    left.append(message)
                elif action == "delete":
                    poison.delete_message(message)
                elif replay is not None:
                    replay["replays"] = _replay(message, replay, events, poison, table, now)
                if replay is not None:
                    report.replayed.append(replay)
    finally:
        for message in left:  # visible again at once for the next run or a person
            poison.update_message(message, visibility_timeout=0)


def _decide(
    message: QueueMessage,
    table: TableClient,
    report: PoisonReport,
    policy: ReconcilePolicy,
    resource_id: str,
    now: datetime,
) -> tuple[str, dict[str, Any] | None]:
    """``("leave", None)``, ``("delete", None)`` or ``("replay", what to report)``."""
    content = str(message.content)
    reason = _envelope_reason(content)
    if reason is not None:
        report.rejected.append({"messageId": message.id, "reason": reason[:300]})
        return "leave", None
    try:
        recording_id = parse_event_message(content, resource_id=resource_id).recording_id
    except (InvalidEventError, UnsupportedEventTypeError) as error:
        report.rejected.append({"messageId": message.id, "reason": f"not replayable: {error}"})
        return "leave", None
    entity = _recording(table, recording_id)
    status = str(entity.get(schema.ARCHIVE_STATUS) or "")
    if is_settled(entity):
        report.resolved.append({"recordingId": recording_id, "status": status})
        return "delete", None
    error = str(entity.get(schema.ARCHIVE_ERROR) or "")
    if status == schema.STATUS_FAILED and classify(error) == "permanent":
        report.permanent.append({"recordingId": recording_id, "error": error[:500]})
        LOGGER.error("poisoned event of recording %s fails for good: %s", recording_id, error)
        return "leave", None
    replays = PendingIndex(table).replays(_body_hash(content))
    item: dict[str, Any] = {"recordingId": recording_id, "replays": replays.count}
    if replays.count >= policy.max_poison_replays:
        report.exhausted.append({**item, "error": error[:500]})
        LOGGER.error(
            "poisoned event of recording %s still fails after %d replays: %s",
            recording_id,
            replays.count,
            error or "(no error recorded)",
        )
        return "leave", None
    last = datetime.fromisoformat(replays.last_replayed_at) if replays.last_replayed_at else None
    if not policy.replay_due(replays.count, None if last is None else now - last):
        report.waiting.append(item)
        return "leave", None
    return "replay", {**item, "replays": replays.count + 1, "error": error[:500]}


def _replay(
    message: QueueMessage,
    replay: dict[str, Any],
    events: QueueClient,
    poison: QueueClient,
    table: TableClient,
    now: datetime,
) -> int:
    """Count, send, delete (in that order); the replay's number."""
    content = str(message.content)
    recording_id = replay["recordingId"]
    count = PendingIndex(table).count_replay(_body_hash(content), recording_id, now)
    events.send_message(content)
    poison.delete_message(message)
    LOGGER.warning(
        "poisoned event of recording %s replayed (replay %d at %s)", recording_id, count, iso(now)
    )
    return count


def _envelope_reason(content: str) -> str | None:
    """The reason of an envelope the archiver wrote for input that can never succeed."""
    try:
        envelope = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if isinstance(envelope, dict) and {"reason", "body"} <= envelope.keys():
        return str(envelope["reason"])
    return None


def _recording(table: TableClient, recording_id: str) -> dict[str, Any]:
    try:
        return dict(table.get_entity(encode_id(recording_id), schema.RECORDING_ROW_KEY))
    except ResourceNotFoundError:
        return {}  # the first registry write failed too (a table outage): an outage


def _body_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8", errors="surrogatepass")).hexdigest()
