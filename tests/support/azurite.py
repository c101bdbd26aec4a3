"""The ``azurite`` fixture: one real Azurite for the test session, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_runtime.processes import AZURITE_ACCOUNT, AZURITE_KEY, Azurite

#: A well-formed connection string for settings that are parsed but never used to connect
#: (nothing listens on port 1); every Storage SDK, the Tables one included, parses it.
UNUSED_STORAGE_CONNECTION_STRING = "".join(
    (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};",
        *(
            f"{service}Endpoint=http://127.0.0.1:1/{AZURITE_ACCOUNT};"
            for service in ("Blob", "Queue", "Table")
        ),
    )
)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (blob, queue, table) on free 127.0.0.1 ports with its data in a temp dir.

    Tests share it and isolate themselves by using their own container, queue and table names.
    """
    service = Azurite(location=tmp_path_factory.mktemp("azurite")).start()
    try:
        yield service
    finally:
        service.stop()
