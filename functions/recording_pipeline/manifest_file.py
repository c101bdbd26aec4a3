"""What every reader of a recording's ``manifest.json`` agrees on with the archiver that writes it.

The archiver writes the manifest last (its presence means "complete"); the API serves it, the
participant export reads it back and the events announcing an archive are built from it. The
name, the read cap and the reader are shared facts of the archive, not of any one flow, so the
others depend on them here instead of on the archiver's modules.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient

#: The manifest's name inside a recording's folder (the registry's ``ArchiveManifestBlob`` ends
#: with it).
MANIFEST_NAME = "manifest.json"
#: Neither the archiver nor the API reads a manifest larger than this back into memory.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def read_manifest(container: ContainerClient, name: str) -> dict[str, Any] | None:
    """The stored manifest ``name``; None when there is none (not archived, or erased).

    :raises ValueError: the blob is larger than :data:`MAX_MANIFEST_BYTES`.
    """
    try:
        downloader = container.get_blob_client(name).download_blob()
    except ResourceNotFoundError:
        return None
    if downloader.size > MAX_MANIFEST_BYTES:
        raise ValueError(f"{name} is {downloader.size} bytes; refusing to read it")
    manifest: dict[str, Any] = json.loads(downloader.readall())
    return manifest
