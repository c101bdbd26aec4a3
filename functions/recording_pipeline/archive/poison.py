"""Write a message that can never succeed to the poison queue, with its reason, once.

The Functions host moves a message to ``<queue>-poison`` only after ``maxDequeueCount`` failed
attempts; a malformed or foreign event would waste those attempts and arrive there without a
reason. The archiver therefore writes it there itself, in an envelope that says why, and
acknowledges it. To write it once even when the acknowledgement is lost and the message comes
back, a marker entity (PartitionKey ``poison``, RowKey ``encode_id(messageId)``, see
``registry.schema``) is kept in the registry table and checked first. The marker is written
after the envelope, so a crash between the two gives a second envelope, never a missing one.

Envelope (JSON text, no base64)::

    {"reason": "...", "messageId": "...", "receivedAt": "<UTC ISO 8601>", "body": "<original>"}

``operations.replay_poison`` puts ``body`` back on the events queue after a fix.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from recording_pipeline.ids import encode_id
from recording_pipeline.registry import schema

LOGGER = logging.getLogger(__name__)

# Queue messages hold 64 KiB; keep the envelope under it even when the body needs escaping.
MAX_ENVELOPE_CHARS = 60 * 1024
#: A reason quotes what it found (a topic, a URL, an id); long quotes are cut.
MAX_REASON_CHARS = 2000


def poison_envelope(
    *, reason: str, message_id: str | None, body: str | bytes, received_at: datetime
) -> str:
    """The envelope as ASCII JSON that fits a queue message as it is.

    ``<``, ``>`` and ``&`` are written as ``\\u`` escapes, so the XML the queue service takes
    the message in is no longer than the envelope; a body that would make it longer than
    :data:`MAX_ENVELOPE_CHARS` is cut (``bodyTruncated``), and so is a very long reason.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    envelope: dict[str, Any] = {
        "reason": reason,
        "messageId": message_id,
        "receivedAt": received_at.astimezone(UTC).isoformat(),
        "body": text,
    }
    encoded = _queue_safe(envelope)
    kept = len(text)
    while len(encoded) > MAX_ENVELOPE_CHARS:
        kept //= 2
        envelope["body"] = text[:kept]
        envelope["bodyTruncated"] = True
        encoded = _queue_safe(envelope)
    return encoded


def _queue_safe(envelope: dict[str, Any]) -> str:
    encoded = json.dumps(envelope)  # ASCII: every non-ASCII character is escaped
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def send_to_poison_once(
    poison_queue: QueueClient,
    markers: TableClient,
    *,
    reason: str,
    message_id: str | None,
    body: str | bytes,
) -> bool:
    """Send the envelope unless this message id was poisoned before; ``True`` if sent now."""
    if message_id and _marker_exists(markers, message_id):
        LOGGER.info("message %s was already written to the poison queue", message_id)
        return False
    now = datetime.now(UTC)
    envelope = poison_envelope(reason=reason, message_id=message_id, body=body, received_at=now)
    poison_queue.send_message(envelope)
    if message_id:
        try:
            markers.create_entity(
                {
                    schema.PARTITION_KEY: schema.POISON_MARKER_PARTITION,
                    schema.ROW_KEY: encode_id(message_id),
                    schema.POISON_REASON: reason[:4000],
                    schema.POISONED_AT: now.isoformat(),
                }
            )
        except ResourceExistsError:
            LOGGER.info("poison marker for %s was written concurrently", message_id)
    return True


def _marker_exists(markers: TableClient, message_id: str) -> bool:
    try:
        markers.get_entity(schema.POISON_MARKER_PARTITION, encode_id(message_id))
    except ResourceNotFoundError:
        return False
    return True
