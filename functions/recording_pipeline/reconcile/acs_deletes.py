"""Finish the deletions from ACS of archived recordings that did not happen.

With ``DELETE_FROM_ACS_AFTER_ARCHIVE`` on, the archiver notes in the registry that it is about to
delete an archived recording's chunks from ACS (``pending-acs-delete``) and removes the note once
every chunk is gone. A note older than ``acs_delete_grace`` means the deletion failed past the
host's retries (or the host gave the message up): the chunks are deleted again here, through
the stored manifest, with the archiver's own delete (a 404 is success: already gone). A refusal
(401/403: the identity lacks its role) is for a person; an outage is tried again next run.
Leaving a copy at ACS loses nothing (ACS deletes it after its retention window), so this is
about not keeping recordings at ACS longer than needed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from itertools import islice

from azure.communication.callautomation import CallAutomationClient
from azure.core.exceptions import AzureError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from recording_pipeline.archive.archiver import delete_from_acs
from recording_pipeline.archive.manifest import read_manifest
from recording_pipeline.failures import classify, describe
from recording_pipeline.reconcile.policy import ReconcilePolicy
from recording_pipeline.reconcile.report import AcsDeleteReport
from recording_pipeline.registry.pending import PendingIndex

LOGGER = logging.getLogger(__name__)


def retry_acs_deletes(
    table: TableClient,
    recordings: ContainerClient,
    acs: CallAutomationClient,
    report: AcsDeleteReport,
    *,
    policy: ReconcilePolicy,
    now: datetime,
    dry_run: bool,
) -> None:
    if not policy.delete_from_acs:
        return
    pending = PendingIndex(table)
    rows = pending.acs_deletes_before(now - policy.acs_delete_grace)
    for row in islice(rows, policy.max_items_per_step):
        manifest = read_manifest(recordings, row.manifest_blob) if row.manifest_blob else None
        item = {"recordingId": row.recording_id, "archivedAt": row.at}
        if dry_run:
            report.deleted.append(item)
            continue
        if manifest is not None:
            try:
                for chunk in manifest["chunks"]:
                    delete_from_acs(acs, chunk["deleteLocation"])
            except AzureError as error:
                failure = describe(error)
                report.failing.append({**item, "error": failure, "retry": classify(failure)})
                LOGGER.warning("recording %s not deleted from ACS: %s", row.recording_id, failure)
                continue
        # No manifest: the recording was erased on request; nothing of it is left to delete.
        pending.remove_acs_delete(row.recording_id, row.at)
        report.deleted.append(item)
