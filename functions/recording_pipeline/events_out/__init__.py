"""Events out: the recordings' state changes announced to other services as CloudEvents 1.0.

In: a state change made by a flow (the archiver's ``archived``, ``lost`` and ``failed``, the
reconciler's ``overdue`` and ``lost``, the operator's ``erased``), announced through
``announce.RecordingEvents``: a pending-event row first (``registry.pending``), then the change,
then the event built from what the registry and the manifest hold (``cloud_events``, pure) and
sent to the Event Grid custom topic (``publisher``). Out: one CloudEvent per recording and
event type (its ``id`` derived from both, so a consumer can drop a repeat), published at least
once: what a publish left behind is published by the reconciler (``reconcile.pending_events``).
A failed publish never fails the change it announces; it logs ``EVENT_PUBLISH_FAILED``.
"""
