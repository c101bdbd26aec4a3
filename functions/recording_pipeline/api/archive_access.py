"""Read access to a recording's archive for the API: its manifest and short-lived download links.

The API never streams a recording through itself. The Functions ASGI adapter (and Flex
Consumption's HTTP pipeline) buffer a whole response body in memory, and a recording can be
gigabytes; instead a client gets a read-only SAS URL for exactly one blob, valid for
:data:`LINK_LIFETIME`, and downloads from Blob Storage directly. In Azure the SAS is a user
delegation SAS signed with a key the app's managed identity obtains (role "Storage Blob
Delegator" on the archive account; shared keys are disabled there); locally it is signed with
Azurite's account key from the connection string.

A client names a file by its name inside the recording's folder (``chunk-0000.wav``,
``chunk-0000.metadata.json``, ``manifest.json``). Only names the stored manifest lists are
served, and the blob path always comes from the manifest, never from the request, so no request
can reach another blob. Links are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from base64 import b64encode
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from recording_pipeline.api import problems
from recording_pipeline.api.control import registry_call
from recording_pipeline.api.problems import ProblemError
from recording_pipeline.api.timing import measure
from recording_pipeline.clock import iso, utc_now
from recording_pipeline.links import BlobSigner
from recording_pipeline.manifest_file import MANIFEST_NAME, MAX_MANIFEST_BYTES
from recording_pipeline.registry.schema import STATUS_ARCHIVED
from recording_pipeline.registry.table import Registry
from recording_pipeline.registry.views import RegistryEntry

LOGGER = logging.getLogger(__name__)

#: How long a download link works. Long enough to start a multi-GB download (a started GET
#: keeps going after expiry), short enough that a leaked link soon stops working.
LINK_LIFETIME = timedelta(minutes=15)
STORAGE_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ArchivedFile:
    """One file of a recording's archive as the manifest describes it."""

    name: str
    blob: str
    size: int
    content_md5: str


def archived_files(
    manifest: dict[str, Any], manifest_blob: str, manifest_body: bytes
) -> dict[str, ArchivedFile]:
    """Every downloadable file of a recording, by its name inside the recording's folder.

    Entries whose blob lies outside the manifest's own folder, or whose size or MD5 is missing,
    are left out (and logged): a link is only ever issued for a verified file of this recording.
    """
    folder = manifest_blob[: -len(MANIFEST_NAME)]
    files: dict[str, ArchivedFile] = {}
    for chunk in manifest.get("chunks") or []:
        if not isinstance(chunk, dict):
            continue
        for blob_key, size_key, md5_key in (
            ("contentBlob", "contentBytes", "contentMd5"),
            ("metadataBlob", "metadataBytes", "metadataMd5"),
        ):
            blob, size, md5 = chunk.get(blob_key), chunk.get(size_key), chunk.get(md5_key)
            if blob is None:
                continue
            name = blob[len(folder) :] if isinstance(blob, str) and blob.startswith(folder) else ""
            if not name or "/" in name or not isinstance(size, int) or not isinstance(md5, str):
                LOGGER.warning("manifest %s lists an unusable %s; skipped", manifest_blob, blob_key)
                continue
            files[name] = ArchivedFile(name, blob, size, md5)
    files[MANIFEST_NAME] = ArchivedFile(
        MANIFEST_NAME,
        manifest_blob,
        len(manifest_body),
        b64encode(hashlib.md5(manifest_body).digest()).decode(),  # noqa: S324 - integrity, as Azure
    )
    return files


class ArchiveAccess:
    """The archive routes: the manifest of a recording and links to its files.

    :param registry: the registry table (where the archiver records the manifest's path).
    :param container: the recordings container.
    :param signer: signs the links (:class:`UserDelegationSigner` in Azure).
    :keyword link_lifetime: how long a link works.
    """

    def __init__(
        self,
        registry: Registry,
        container: ContainerClient,
        signer: BlobSigner,
        *,
        link_lifetime: timedelta = LINK_LIFETIME,
    ) -> None:
        self._registry = registry
        self._container = container
        self._signer = signer
        self._link_lifetime = link_lifetime

    def manifest(self, recording_id: str) -> bytes:
        """The stored ``manifest.json``, byte for byte.

        :raises ProblemError: 404 unknown recording or manifest gone, 409 not archived, 503.
        """
        body, _, _ = self._manifest(recording_id)
        return body

    def file_link(self, recording_id: str, file_name: str) -> dict[str, Any]:
        """A read-only link to one archived file, with the size and MD5 to verify it against.

        :raises ProblemError: 404 unknown recording, unknown file name or file gone; 409 not
            archived or the file is in the Archive tier; 502 the app may not sign links; 503.
        """
        body, manifest, manifest_blob = self._manifest(recording_id)
        files = archived_files(manifest, manifest_blob, body)
        found = files.get(file_name)
        if found is None:
            raise problems.archived_file_not_found(recording_id, file_name, list(files))
        if found.name != MANIFEST_NAME:  # the manifest was read a moment ago
            self._check_readable(found)
        expires_on = utc_now() + self._link_lifetime
        try:
            with measure("blob"):
                token = self._signer.sign(found.blob, expires_on)
        except HttpResponseError as error:
            if error.status_code == 403:
                raise problems.storage_misconfigured(
                    "The app's identity may not create download links: it needs the "
                    "'Storage Blob Delegator' role on the archive account."
                ) from error
            raise _unavailable(error) from error
        except AzureError as error:
            raise _unavailable(error) from error
        url = f"{self._container.get_blob_client(found.blob).url}?{token}"
        LOGGER.info("download link issued for %s (expires %s)", found.name, iso(expires_on))
        return {
            "name": found.name,
            "size": found.size,
            "contentMd5": found.content_md5,
            "url": url,
            "expiresOn": iso(expires_on),
        }

    def _manifest(self, recording_id: str) -> tuple[bytes, dict[str, Any], str]:
        entry = self._archived_entry(recording_id)
        manifest_blob = str((entry.archive or {}).get("manifestBlob") or "")
        if not manifest_blob.endswith("/" + MANIFEST_NAME):
            raise problems.not_archived(
                recording_id, STATUS_ARCHIVED, "the registry names no manifest"
            )
        try:
            with measure("blob"):
                downloader = self._container.get_blob_client(manifest_blob).download_blob()
                if downloader.size > MAX_MANIFEST_BYTES:
                    raise problems.archive_inconsistent(
                        f"The manifest is {downloader.size} bytes, more than this API reads."
                    )
                body = downloader.readall()
        except ResourceNotFoundError as error:
            raise problems.archived_file_missing(MANIFEST_NAME) from error
        except HttpResponseError as error:
            raise _tier_or_unavailable(error, MANIFEST_NAME) from error
        except AzureError as error:
            raise _unavailable(error) from error
        try:
            manifest = json.loads(body)
        except ValueError as error:
            raise problems.archive_inconsistent("The stored manifest is not JSON.") from error
        if not isinstance(manifest, dict):
            raise problems.archive_inconsistent("The stored manifest is not a JSON object.")
        return body, manifest, manifest_blob

    def _archived_entry(self, recording_id: str) -> RegistryEntry:
        entry: RegistryEntry | None = registry_call(self._registry.get, recording_id)
        if entry is None:
            raise problems.recording_not_found(recording_id)
        archive = entry.archive or {}
        status = archive.get("status")
        if status != STATUS_ARCHIVED:
            raise problems.not_archived(recording_id, status, archive.get("error"))
        return entry

    def _check_readable(self, found: ArchivedFile) -> None:
        """A link to a missing blob or one in the Archive tier would fail; say so now."""
        try:
            with measure("blob"):
                properties = self._container.get_blob_client(found.blob).get_blob_properties()
        except ResourceNotFoundError as error:
            raise problems.archived_file_missing(found.name) from error
        except AzureError as error:
            raise _unavailable(error) from error
        if str(properties.blob_tier or "").lower() == "archive":
            raise problems.file_in_archive_tier(found.name, properties.archive_status)


def _tier_or_unavailable(error: HttpResponseError, name: str) -> ProblemError:
    if getattr(error, "error_code", None) == "BlobArchived":
        return problems.file_in_archive_tier(name, None)
    return _unavailable(error)


def _unavailable(error: AzureError) -> ProblemError:
    LOGGER.warning("archive storage unavailable: %s", type(error).__name__)
    return problems.archive_unavailable(retry_after_seconds=STORAGE_RETRY_AFTER_SECONDS)
