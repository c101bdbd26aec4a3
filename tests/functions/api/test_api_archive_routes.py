"""The list and archive routes over real HTTP: API (uvicorn), registry and blobs in Azurite.

Archives are written here the way the archiver leaves them (blobs under the documented layout,
``manifest.json`` last, ``Archive*`` properties merged into the registry row), so each test
controls exactly what is stored; the real archiver feeds these routes in tests/e2e.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient, UserDelegationKey

from local_runtime.processes import Azurite
from recording_pipeline.ids import encode_id
from recording_pipeline.links import UserDelegationSigner
from tests.functions.stack import FUNCTION_KEY
from tests.support.emulator import RunningEmulator

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def table(azurite: Azurite, registry_table: str) -> TableClient:
    client = TableClient.from_connection_string(azurite.connection_string, registry_table)
    with contextlib.suppress(ResourceExistsError):
        client.create_table()
    return client


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> ContainerClient:
    client = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).get_container_client("recordings")
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    return client


def path_of(recording_id: str) -> str:
    return f"/api/recordings/{quote(recording_id, safe='')}"


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324


def put_recording(table: TableClient, recording_id: str, **properties: Any) -> None:
    table.upsert_entity(
        {
            "PartitionKey": encode_id(recording_id),
            "RowKey": "recording",
            "RecordingId": recording_id,
            "CreatedAt": datetime.now(UTC).isoformat(),
            **properties,
        },
        mode=UpdateMode.MERGE,
    )


def archive_recording(
    table: TableClient, container: ContainerClient, recording_id: str, *, chunks: int = 1
) -> dict[str, Any]:
    """Store an archive as the archiver does; answers the manifest and every file's bytes."""
    call_id = str(uuid.uuid4())
    prefix = f"2026/01/02/{encode_id(call_id)}/{encode_id(recording_id)}/"
    entries, files = [], {}
    for index in range(chunks):
        content = os.urandom(200_000 + index)
        metadata = json.dumps({"chunkIndex": index, "recordingId": recording_id}).encode()
        content_blob = f"{prefix}chunk-{index:04d}.wav"
        metadata_blob = f"{prefix}chunk-{index:04d}.metadata.json"
        container.upload_blob(content_blob, content, overwrite=True)
        container.upload_blob(metadata_blob, metadata, overwrite=True)
        files[content_blob.rsplit("/", 1)[1]] = content
        files[metadata_blob.rsplit("/", 1)[1]] = metadata
        entries.append(
            {
                "index": index,
                "contentBlob": content_blob,
                "contentBytes": len(content),
                "contentMd5": b64md5(content),
                "metadataBlob": metadata_blob,
                "metadataBytes": len(metadata),
                "metadataMd5": b64md5(metadata),
            }
        )
    manifest = {
        "schemaVersion": 1,
        "recordingId": recording_id,
        "callId": call_id,
        "serverCallId": "server-call",
        "blobPrefix": prefix,
        "chunks": entries,
        "totalBytes": sum(e["contentBytes"] for e in entries),
        "participants": [{"participantId": "8:acs:alice", "channels": [0]}],
        "archivedAt": datetime.now(UTC).isoformat(),
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    container.upload_blob(f"{prefix}manifest.json", body, overwrite=True)
    files["manifest.json"] = body
    put_recording(
        table,
        recording_id,
        State="stopped",
        ArchiveStatus="archived",
        CallId=call_id,
        ArchiveBlobPrefix=prefix,
        ArchiveManifestBlob=f"{prefix}manifest.json",
        ArchiveChunkCount=chunks,
        ArchiveTotalBytes=manifest["totalBytes"],
        ArchivedAt=manifest["archivedAt"],
    )
    return {"manifest": manifest, "files": files, "prefix": prefix}


# --- GET /api/recordings ---------------------------------------------------------------------


def collect(client: httpx.Client, **params: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Follow continuation tokens to the end; answers every item and each page's size."""
    items: list[dict[str, Any]] = []
    sizes: list[int] = []
    token = None
    for _ in range(50):
        query = {**params, **({"continuationToken": token} if token else {})}
        response = client.get("/api/recordings", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        sizes.append(len(page["items"]))
        token = page["continuationToken"]
        if token is None:
            return items, sizes
    raise AssertionError("the continuation never ended")


def test_list_pages_through_every_match_once_and_filters_on_the_service(
    client: httpx.Client, table: TableClient
) -> None:
    call = f"call-{uuid.uuid4().hex}"
    ids = [f"rec-{uuid.uuid4().hex[:8]}+/{i}=" for i in range(23)]
    for i, recording_id in enumerate(ids):
        put_recording(
            table,
            recording_id,
            ServerCallId=call,
            State="stopped" if i % 3 == 0 else "active",
            **({"ArchiveStatus": "archived", "ArchiveChunkCount": 2} if i % 5 == 0 else {}),
        )
    # Rows of the other kinds with RowKey "recording" are never listed as recordings.
    table.upsert_entity(
        {
            "PartitionKey": "idempotency",
            "RowKey": "recording",
            "RecordingId": "x",
            "ServerCallId": call,
        }
    )
    table.upsert_entity(
        {
            "PartitionKey": "participant-8%3Aacs%3Aalice",
            "RowKey": "recording",
            "ParticipantId": "8:acs:alice",
            "RecordingId": "recording",
            "ServerCallId": call,
        }
    )

    items, sizes = collect(client, serverCallId=call, limit=10)

    assert sorted(item["recordingId"] for item in items) == sorted(ids)
    assert sizes == [10, 10, 3]
    # An archived recording has ended (ACS publishes files only then), whatever State says.
    stopped, _ = collect(client, serverCallId=call, state="stopped", limit=4)
    ended = {r for n, r in enumerate(ids) if n % 3 == 0 or n % 5 == 0}
    assert {i["recordingId"] for i in stopped} == ended
    active, _ = collect(client, serverCallId=call, state="active")
    assert {i["recordingId"] for i in active} == set(ids) - ended
    archived, _ = collect(client, serverCallId=call, archiveStatus="archived", state="stopped")
    assert {i["recordingId"] for i in archived} == {r for n, r in enumerate(ids) if n % 5 == 0}
    assert archived[0]["archiveStatus"] == "archived"
    assert archived[0]["chunkCount"] == 2
    assert set(archived[0]) >= {"recordingId", "serverCallId", "state", "createdAt", "totalBytes"}


def test_list_shows_a_recording_started_through_the_api(
    client: httpx.Client, module_emulator: RunningEmulator
) -> None:
    call = module_emulator.simulation.create_call(["8:acs:alice", "8:acs:bob"])
    started = client.post(
        "/api/recordings",
        json={"serverCallId": call["serverCallId"], "content": "audio", "format": "wav"},
    )
    assert started.status_code == 201, started.text

    page = client.get("/api/recordings", params={"serverCallId": call["serverCallId"]}).json()

    assert page["continuationToken"] is None
    [item] = page["items"]
    assert item["recordingId"] == started.json()["recordingId"]
    assert (item["state"], item["content"], item["format"]) == ("active", "audio", "wav")
    assert item["archiveStatus"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"state": "paused"}, "state"),
        ({"archiveStatus": "done"}, "archiveStatus"),
        ({"continuationToken": "not-a-token"}, "continuationToken"),
        ({"continuationToken": base64.urlsafe_b64encode(b"[1, 2]").decode()}, "continuationToken"),
    ],
)
def test_list_refuses_bad_parameters_naming_the_field(
    client: httpx.Client, params: dict[str, Any], field: str
) -> None:
    response = client.get("/api/recordings", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == field


# --- GET .../archive/manifest ----------------------------------------------------------------


def test_manifest_is_the_stored_document_byte_for_byte(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"m+/{uuid.uuid4().hex}=="
    stored = archive_recording(table, container, recording_id, chunks=2)

    response = client.get(f"{path_of(recording_id)}/archive/manifest")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == stored["files"]["manifest.json"]
    assert (
        response.json()["chunks"][1]["contentMd5"] == stored["manifest"]["chunks"][1]["contentMd5"]
    )


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        ({}, "has no archive yet"),
        ({"ArchiveStatus": "archiving"}, "being archived now"),
        ({"ArchiveStatus": "lost", "ArchiveError": "ACS answered 404"}, "ACS answered 404"),
    ],
)
def test_manifest_of_a_recording_not_archived_is_409_saying_why(
    client: httpx.Client, table: TableClient, archive: dict[str, str], expected: str
) -> None:
    recording_id = f"n/{uuid.uuid4().hex}"
    put_recording(table, recording_id, State="stopped", **archive)

    response = client.get(f"{path_of(recording_id)}/archive/manifest")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:acs-call-recording:problem:not-archived"
    assert expected in response.json()["detail"]


def test_archive_routes_of_an_unknown_recording_are_404(client: httpx.Client) -> None:
    unknown = path_of(f"unknown+/{uuid.uuid4().hex}")
    for route in ("archive/manifest", "archive/files/manifest.json"):
        response = client.get(f"{unknown}/{route}")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:acs-call-recording:problem:recording-not-found"


def test_manifest_gone_from_storage_is_404(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"g/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    container.delete_blob(f"{stored['prefix']}manifest.json")

    response = client.get(f"{path_of(recording_id)}/archive/manifest")

    assert response.status_code == 404
    assert response.json()["type"] == "urn:acs-call-recording:problem:archived-file-missing"


# --- GET .../archive/files/{fileName} --------------------------------------------------------


def test_every_listed_file_downloads_with_a_plain_get_and_matches_its_md5(
    client: httpx.Client,
    table: TableClient,
    container: ContainerClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recording_id = f"f+/{uuid.uuid4().hex}="
    stored = archive_recording(table, container, recording_id, chunks=2)
    caplog.set_level(logging.DEBUG)

    for name, data in stored["files"].items():
        before = datetime.now(UTC)
        response = client.get(f"{path_of(recording_id)}/archive/files/{name}")
        assert response.status_code == 200, response.text
        link = response.json()
        assert (link["name"], link["size"], link["contentMd5"]) == (name, len(data), b64md5(data))
        expires = datetime.fromisoformat(link["expiresOn"].replace("Z", "+00:00"))
        assert before + timedelta(minutes=14) < expires <= datetime.now(UTC) + timedelta(minutes=15)
        query = parse_qs(urlparse(link["url"]).query)
        assert query["sp"] == ["r"], "a download link must be read-only"

        downloaded = httpx.get(link["url"], timeout=30)  # no function key, no storage key

        assert downloaded.status_code == 200
        assert b64md5(downloaded.content) == link["contentMd5"]
        assert len(downloaded.content) == link["size"]
    # The test's own HTTP client logs the URLs it fetches; the API's side must not.
    api_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert api_side, "the API's log records were not captured"
    assert not [r for r in api_side if "sig=" in r.getMessage()], "a link was logged"


def test_a_link_reads_only_its_own_blob(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"r/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    url = client.get(f"{path_of(recording_id)}/archive/files/chunk-0000.wav").json()["url"]

    written = httpx.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    other = httpx.get(url.replace("chunk-0000.wav", "chunk-0000.metadata.json"), timeout=30)

    assert written.status_code == 403
    assert other.status_code == 403
    assert (
        container.download_blob(f"{stored['prefix']}chunk-0000.wav").readall()
        == (stored["files"]["chunk-0000.wav"])
    )


@pytest.mark.parametrize(
    "file_name",
    [
        "..%2Fmanifest.json",
        "..%2F..%2F..%2Fmanifest.json",
        "chunk-0009.wav",
        "extra.bin",
        "CHUNK-0000.WAV",
        "chunk-0000.wav%00",
        "%2Fchunk-0000.wav",
    ],
)
def test_names_the_manifest_does_not_list_are_404(
    client: httpx.Client, table: TableClient, container: ContainerClient, file_name: str
) -> None:
    recording_id = f"t/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    container.upload_blob(f"{stored['prefix']}extra.bin", b"not in the manifest")

    response = client.get(f"{path_of(recording_id)}/archive/files/{file_name}")

    assert response.status_code == 404, response.text
    body = response.json()
    assert body["type"] == "urn:acs-call-recording:problem:archived-file-not-found"
    assert body["field"] == "fileName"
    assert "chunk-0000.wav, chunk-0000.metadata.json, manifest.json" in body["detail"]
    assert "url" not in body


def test_the_full_blob_path_is_not_a_file_name(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"p/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    full_path = quote(f"{stored['prefix']}chunk-0000.wav", safe="")

    response = client.get(f"{path_of(recording_id)}/archive/files/{full_path}")

    assert response.status_code == 404
    assert response.json()["type"] == "urn:acs-call-recording:problem:archived-file-not-found"


def test_a_listed_file_gone_from_storage_is_404_not_a_dead_link(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"d/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    container.delete_blob(f"{stored['prefix']}chunk-0000.wav")

    response = client.get(f"{path_of(recording_id)}/archive/files/chunk-0000.wav")

    assert response.status_code == 404
    assert response.json()["type"] == "urn:acs-call-recording:problem:archived-file-missing"


def test_a_file_in_the_archive_tier_is_409_until_rehydrated(
    client: httpx.Client, table: TableClient, container: ContainerClient
) -> None:
    recording_id = f"a/{uuid.uuid4().hex}"
    stored = archive_recording(table, container, recording_id)
    container.get_blob_client(f"{stored['prefix']}chunk-0000.wav").set_standard_blob_tier("Archive")

    response = client.get(f"{path_of(recording_id)}/archive/files/chunk-0000.wav")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:acs-call-recording:problem:file-in-archive-tier"


def test_file_of_a_recording_not_archived_is_409(client: httpx.Client, table: TableClient) -> None:
    recording_id = f"x/{uuid.uuid4().hex}"
    put_recording(table, recording_id, State="active")

    response = client.get(f"{path_of(recording_id)}/archive/files/manifest.json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:acs-call-recording:problem:not-archived"


@pytest.mark.parametrize(
    "route",
    [
        "/api/recordings",
        "/api/recordings/some-id/archive/manifest",
        "/api/recordings/some-id/archive/files/manifest.json",
    ],
)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_new_routes_need_the_function_key(
    anonymous_client: httpx.Client, route: str, key: str | None
) -> None:
    headers = {} if key is None else {"x-functions-key": key}
    response = anonymous_client.get(route, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert FUNCTION_KEY not in response.text


# --- the Azure signer, without Azure ---------------------------------------------------------


class _DelegationService:
    """Stands in for BlobServiceClient.get_user_delegation_key (Azure only; Azurite has none)."""

    account_name = "archiveaccount"

    def __init__(self) -> None:
        self.requests: list[tuple[datetime, datetime]] = []

    def get_user_delegation_key(self, start: datetime, expiry: datetime) -> UserDelegationKey:
        self.requests.append((start, expiry))
        key = UserDelegationKey()
        key.signed_oid = "00000000-0000-0000-0000-0000000000a1"
        key.signed_tid = "00000000-0000-0000-0000-0000000000b2"
        key.signed_start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service = "b"
        key.signed_version = "2025-01-05"
        key.value = base64.b64encode(os.urandom(32)).decode()
        return key


def test_user_delegation_links_reuse_one_key_until_it_would_outlive_a_link() -> None:
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    service = _DelegationService()
    signer = UserDelegationSigner(service, "recordings", clock=lambda: now[0])  # type: ignore[arg-type]

    first = parse_qs(signer.sign("a/b/chunk-0000.wav", now[0] + timedelta(minutes=15)))
    signer.sign("a/b/manifest.json", now[0] + timedelta(minutes=15))
    now[0] += timedelta(minutes=45)
    signer.sign("a/b/manifest.json", now[0] + timedelta(minutes=15))

    assert len(service.requests) == 2, "a key is reused, and renewed before it outlives a link"
    assert first["sp"] == ["r"]
    assert first["spr"] == ["https"]
    assert first["skoid"] == ["00000000-0000-0000-0000-0000000000a1"]
    assert first["sr"] == ["b"]
