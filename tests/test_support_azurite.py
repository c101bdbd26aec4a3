"""The shared Azurite fixture serves blob, queue and table with the real SDKs."""

from __future__ import annotations

import uuid

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from local_runtime.processes import Azurite


def test_azurite_serves_blob_queue_and_table(azurite: Azurite) -> None:
    name = f"t{uuid.uuid4().hex[:12]}"
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs.create_container(name).upload_blob("hello.txt", b"hello")
    assert blobs.get_blob_client(name, "hello.txt").download_blob().readall() == b"hello"

    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    queues.create_queue(name).send_message("ping")
    assert [m.content for m in queues.get_queue_client(name).receive_messages()] == ["ping"]

    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    tables.create_table(name).upsert_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
    assert tables.get_table_client(name).get_entity("p", "r")["v"] == 1
