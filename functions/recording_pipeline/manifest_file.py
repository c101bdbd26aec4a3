"""What every reader of a recording's ``manifest.json`` agrees on with the archiver that writes it.

The archiver writes the manifest last (its presence means "complete"); the API serves it and the
participant export reads it back. The name and the read cap are shared facts of the archive, not
of either flow, so the API depends on them here instead of on the archiver's modules.
"""

from __future__ import annotations

#: The manifest's name inside a recording's folder (the registry's ``ArchiveManifestBlob`` ends
#: with it).
MANIFEST_NAME = "manifest.json"
#: Neither the archiver nor the API reads a manifest larger than this back into memory.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
