"""Operator tools that act on the running pipeline; not part of the deployed app's request path.

In: an operator's command (``scripts/replay_poison.py``, ``scripts/export_participant.py``) with
the Function App's settings. ``replay_poison`` puts poisoned events back on the events queue, for
the archive flow to take again; ``participants`` lists, exports or erases one participant's
recordings through the registry's participant index (its writes go through
``registry.archive_writes``). Out: queue messages, exported files, deleted blobs and index rows.
"""
