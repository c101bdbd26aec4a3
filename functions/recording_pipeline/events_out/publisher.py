"""Send one CloudEvent to the Event Grid custom topic with the SDK (``azure-eventgrid``).

The event goes as the dict :mod:`cloud_events` built: the SDK sends a CloudEvent-shaped dict
unchanged, in a JSON array, as ``application/cloudevents-batch+json``, with the credential's
header (a managed-identity bearer token in Azure, ``aeg-sas-key`` locally). One event per
request: each state change is announced on its own, and a refusal concerns that event only.

The sync client of azure-eventgrid 4.22.1 builds its pipeline for basic topics without the
options given to its constructor, so the retry count and the timeouts go with each ``send``.
That client also hands those per-call options to its CloudEvent model, which logs a WARNING
("... is not a known attribute ... and will be ignored") for each of them on every send; the
filter below drops exactly those lines, for exactly these options.

The SDK turns the dict into its CloudEvent model and back, rewriting ``time`` (an offset other
than UTC was seen lost on the way); :mod:`cloud_events` writes every ``time`` in UTC in the
SDK's own form, so what is sent is what was built.
"""

from __future__ import annotations

import logging
from typing import Any

from azure.eventgrid import EventGridPublisherClient

#: Retries inside one publish (the SDK's backoff: 0.8 s, 1.6 s). A publish that still fails is
#: left to the reconciler, so the flow it announces is not held up for long.
RETRY_TOTAL = 2
#: Seconds to connect and to wait for Event Grid's answer.
TIMEOUT_SECONDS = 10


#: The SDK logger that warns about the per-call options (azure-eventgrid 4.22.1).
_SDK_MODEL_LOGGER = "azure.eventgrid._legacy._generated._serialization"
_PER_CALL_OPTIONS = frozenset({"retry_total", "connection_timeout", "read_timeout"})


class _PerCallOptionWarnings(logging.Filter):
    """Drops the SDK's "``<option>`` is not a known attribute" warning for our options only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        known_noise = "is not a known attribute" in str(record.msg) and bool(args)
        return not (known_noise and args[0] in _PER_CALL_OPTIONS)


logging.getLogger(_SDK_MODEL_LOGGER).addFilter(_PerCallOptionWarnings())


class EventsPublisher:
    """Publishes one event at a time to the topic ``client`` points at."""

    def __init__(
        self,
        client: EventGridPublisherClient,
        *,
        retry_total: int = RETRY_TOTAL,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._options: dict[str, Any] = {
            "retry_total": retry_total,
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
        }

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event``; returns once Event Grid answered 200.

        :raises azure.core.exceptions.ClientAuthenticationError: 401 (a wrong key, or a token
            for an identity without EventGrid Data Sender on the topic).
        :raises azure.core.exceptions.HttpResponseError: any other refusal (400 a malformed
            event, 403, 413 an event over 1 MB) or an outage past the retries.
        :raises azure.core.exceptions.ServiceRequestError: the topic could not be reached.
        """
        self._client.send([event], **self._options)

    def close(self) -> None:
        self._client.close()
