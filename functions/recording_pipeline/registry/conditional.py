"""One read-modify-write of a registry entity under its ETag, redone when another writer won.

Several writers share entities without locks (the archiver and the reconciler on a recording's
``Archive*`` properties, two reconciler runs on a replay count): each reads the entity, decides
what to merge from what it read, and writes conditionally on the read's ETag (or creates the
entity when it was missing). A lost race reads again and decides again, so no decision is taken
on a copy another writer has since changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from recording_pipeline.registry import schema

_ATTEMPTS = 8

#: From the entity as read (None when missing), what to merge, or None to write nothing.
Decision = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def merge_if_unchanged(
    table: TableClient, keys: dict[str, str], decide: Decision, *, what: str
) -> dict[str, Any] | None:
    """Merge what ``decide`` answers under the read's ETag; the properties written, or None.

    :raises RuntimeError: when other writers kept winning (``what`` names the entity).
    """
    for _ in range(_ATTEMPTS):
        try:
            current = table.get_entity(keys[schema.PARTITION_KEY], keys[schema.ROW_KEY])
        except ResourceNotFoundError:
            current = None
        properties = decide(None if current is None else dict(current))
        if properties is None:
            return None
        try:
            if current is None:
                table.create_entity({**keys, **properties})
            else:
                table.update_entity(
                    {**keys, **properties},
                    mode=UpdateMode.MERGE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            continue
        return properties
    raise RuntimeError(f"{what} kept changing; giving up for now")
