"""Forged events against the registry binding: nothing misfiled, lost or deleted (real SDKs,
Azurite, the ranged media server).

Recordings A and B are started through the API (their registry rows hold the server call id and
the call id a verified callback reported); C was never started through the API. A forger may
choose every field of an event; whatever it chooses, no byte lands in another recording's
folder, no registry row changes but that of a recording archived from its own documents, and
nothing is deleted from ACS but such a recording's own documents.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime.media_server import Fault, SyntheticMediaServer
from recording_pipeline.archive.archiver import ArchiveOutcome, handle_event_message
from recording_pipeline.archive.binding import CallIdPendingError
from recording_pipeline.archive.host_json import max_dequeue_count
from recording_pipeline.archive.layout import recording_prefix
from recording_pipeline.archive.media_source import SourceUnavailableError
from recording_pipeline.archive.quarantine import QUARANTINE_ROOT
from recording_pipeline.failures import classify, describe
from recording_pipeline.registry import schema
from tests.functions.archive.conftest import (
    FAST_RETRY,
    MEDIA_HOST,
    ArchiveStack,
    SyntheticRecording,
    publish_recording,
    register_recording,
)

Event = dict[str, Any]


def handle(stack: ArchiveStack, event: Event, *, dequeue_count: int = 1) -> ArchiveOutcome:
    return handle_event_message(
        json.dumps(event),
        dequeue_count=dequeue_count,
        message_id=str(uuid.uuid4()),
        settings=stack.settings,
        retry=FAST_RETRY,
    )


def register(stack: ArchiveStack, recording: SyntheticRecording) -> None:
    register_recording(
        stack.table, recording.call_id, recording.server_call_id, recording.recording_id
    )


def forged(
    base: SyntheticRecording,
    *,
    call_id: str | None = None,
    server_call_id: str | None = None,
    recording_id: str | None = None,
    chunks_of: SyntheticRecording | None = None,
) -> Event:
    """``base``'s event with any of its subject ids or its chunks replaced (a new event id)."""
    event = copy.deepcopy(base.event(id=str(uuid.uuid4())))
    event["subject"] = (
        f"/recording/call/{call_id or base.call_id}"
        f"/serverCallId/{server_call_id or base.server_call_id}"
        f"/recordingId/{recording_id or base.recording_id}"
    )
    if chunks_of is not None:
        event["data"]["recordingStorageInfo"] = chunks_of.event()["data"]["recordingStorageInfo"]
    return event


def folder(recording: SyntheticRecording) -> str:
    return recording_prefix(recording.call_id, recording.recording_id, recording.start_time)


def blobs_under(stack: ArchiveStack, prefix: str) -> list[str]:
    return sorted(blob.name for blob in stack.container.list_blobs(name_starts_with=prefix))


def document_paths(recording: SyntheticRecording) -> set[str]:
    return {f"/v1/objects/{chunk.document_id}" for chunk in recording.chunks}


def assert_untouched(stack: ArchiveStack, media: SyntheticMediaServer, *recordings: Any) -> None:
    for recording in recordings:
        assert blobs_under(stack, folder(recording)) == []
        entity = stack.recording_entity(recording.recording_id) or {}
        assert schema.ARCHIVE_STATUS not in entity, entity
        assert not set(media.deleted) & document_paths(recording)


def assert_refused_then_the_real_event_archives(
    stack: ArchiveStack,
    media: SyntheticMediaServer,
    reason: str,
    real: SyntheticRecording,
    *others: SyntheticRecording,
) -> None:
    """Poisoned with ``reason``, nothing written anywhere; then ``real``'s own event archives."""
    (envelope,) = stack.poison_envelopes()
    assert reason in envelope["reason"]
    assert stack.blob_names() == []
    assert_untouched(stack, media, real, *others)
    assert handle(stack, real.event()) is ArchiveOutcome.ARCHIVED


# --- the attacks of the review, one by one -------------------------------------------------------


@pytest.fixture
def a_and_b(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> tuple[SyntheticRecording, SyntheticRecording]:
    a = publish_recording(media_server, [1000, 2000], seed=1)
    b = publish_recording(media_server, [3000], seed=2)
    register(stack, a)
    register(stack, b)
    return a, b


def test_b_under_a_with_bs_call_in_the_subject_is_quarantined_and_both_archive(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = a_and_b
    attack = forged(a, call_id=b.call_id, chunks_of=b)

    with caplog.at_level(logging.ERROR, logger="recording_pipeline.archive.archiver"):
        assert handle(stack, attack) is ArchiveOutcome.QUARANTINED

    assert_untouched(stack, media_server, a, b)
    quarantined = blobs_under(stack, QUARANTINE_ROOT)
    assert len(quarantined) == 3  # B's one chunk, its metadata, the manifest
    manifest = json.loads(stack.read_blob(next(n for n in quarantined if "manifest" in n)))
    assert "callId is not the recording's call in the registry" in manifest["unverified"]
    assert [c["documentId"] for c in manifest["chunks"]] == [b.chunks[0].document_id]
    (log,) = [r.getMessage() for r in caplog.records if "RECORDING_UNVERIFIED" in r.getMessage()]
    assert a.recording_id in log and "nothing was deleted from ACS" in log
    for real in (a, b):
        assert handle(stack, real.event()) is ArchiveOutcome.ARCHIVED
        entity = stack.recording_entity(real.recording_id)
        assert entity is not None and entity["ArchiveStatus"] == "archived"
        archived = blobs_under(stack, folder(real))
        assert len(archived) == 2 * len(real.chunks) + 1


def test_a_real_event_under_a_made_up_recording_id_writes_no_row_and_deletes_nothing(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    _, b = a_and_b
    made_up = "bWFkZS11cA+/" + uuid.uuid4().hex
    attack = forged(b, recording_id=made_up)

    assert handle(stack, attack) is ArchiveOutcome.QUARANTINED

    assert stack.recording_entity(made_up) is None
    assert_untouched(stack, media_server, b)
    assert handle(stack, b.event()) is ArchiveOutcome.ARCHIVED


def test_a_metadata_url_of_no_such_kind_is_refused_before_anything_is_read(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    a, b = a_and_b
    attack = forged(a, chunks_of=b)
    chunk = attack["data"]["recordingStorageInfo"]["recordingChunks"][0]
    chunk["metadataLocation"] = (
        f"https://{MEDIA_HOST}/v1/objects/{b.chunks[0].document_id}/content/nosuchkind"
    )

    assert handle(stack, attack) is ArchiveOutcome.REJECTED

    assert media_server.requests == []
    assert_refused_then_the_real_event_archives(
        stack, media_server, "is not ACS's metadataLocation", a, b
    )


def test_a_made_up_document_never_marks_a_recording_lost(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    """A's own subject (the forger knows A's ids) with a document ACS answers 404 for."""
    a, _ = a_and_b
    attack = forged(a)
    fake = f"0-emu-d0-{uuid.uuid4().hex}"
    for index, chunk in enumerate(attack["data"]["recordingStorageInfo"]["recordingChunks"]):
        chunk["documentId"] = f"{fake}{index}"
        base = f"https://{MEDIA_HOST}/v1/objects/{fake}{index}"
        chunk.update(
            contentLocation=f"{base}/content/audio",
            metadataLocation=f"{base}/content/acsmetadata",
            deleteLocation=base,
        )

    assert handle(stack, attack) is ArchiveOutcome.REJECTED

    assert_refused_then_the_real_event_archives(
        stack, media_server, "ACS answers 404 for its metadata, so it cannot be checked", a
    )


def test_content_gone_after_verified_metadata_is_lost_on_evidence(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    a, _ = a_and_b
    del media_server.objects[a.chunks[1].content_path]

    assert handle(stack, a.event()) is ArchiveOutcome.LOST

    entity = stack.recording_entity(a.recording_id)
    assert entity is not None
    assert entity["ArchiveStatus"] == "lost"
    assert entity["ArchiveLostEvidence"] == schema.LOST_BY_VERIFIED_404


def test_a_recording_unknown_to_the_registry_is_kept_apart_never_deleted(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    unknown = publish_recording(media_server, [1500], seed=3)

    assert handle(stack, unknown.event()) is ArchiveOutcome.QUARANTINED
    # A redelivery finds its own copy.
    assert handle(stack, unknown.event()) is ArchiveOutcome.QUARANTINED

    assert_untouched(stack, media_server, unknown)
    assert stack.recording_entity(unknown.recording_id) is None
    names = blobs_under(stack, QUARANTINE_ROOT)
    assert len(names) == 3
    content = next(name for name in names if name.endswith(".wav"))
    assert stack.read_blob(content) == unknown.chunks[0].content
    tags = stack.container.get_blob_client(content).get_blob_tags()
    assert tags["kind"] == "unverified-content"


def test_forged_events_naming_one_document_make_one_copy_that_lists_them_all(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    """N events naming B's real document under N made-up recording ids (and another start
    time) copy it once: the folder is keyed by the documents, not by what the events claim; the
    manifest names every event once (a redelivery is not listed twice)."""
    _, b = a_and_b
    attacks = [forged(b, recording_id=f"forged+{uuid.uuid4().hex}/=") for _ in range(3)]
    attacks[1]["data"]["recordingStartTime"] = "2031-01-01T00:00:00Z"

    for attack in [*attacks, attacks[0]]:
        assert handle(stack, attack) is ArchiveOutcome.QUARANTINED

    names = blobs_under(stack, QUARANTINE_ROOT)
    assert len(names) == 3  # B's one chunk, its metadata, one manifest
    manifest = json.loads(stack.read_blob(next(n for n in names if "manifest" in n)))
    named = manifest["namingEvents"]
    assert [entry["eventId"] for entry in named] == [attack["id"] for attack in attacks]
    assert [entry["recordingId"] for entry in named] == [
        attack["subject"].split("/recordingId/", 1)[1] for attack in attacks
    ]
    assert all("not in the registry" in entry["unverified"] for entry in named)
    assert_untouched(stack, media_server, b)
    assert handle(stack, b.event()) is ArchiveOutcome.ARCHIVED


def test_a_file_event_before_the_callback_that_names_the_call_waits_for_it(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    """Started through the API, but the callback that writes the call id is late: every attempt
    (the last too) raises for a redelivery and writes nothing anywhere, never a quarantine; the
    host then moves the event to the poison queue, whose replay the reconciler counts as an
    outage's. Once the callback has written the call id, the same event archives."""
    recording = publish_recording(media_server, [1000], seed=4)
    register(stack, recording)
    keys = schema.recording_keys(recording.recording_id)
    stack.table.update_entity({**keys, schema.CORRELATION_ID: ""})

    for attempt in (1, max_dequeue_count()):
        with pytest.raises(CallIdPendingError) as raised:
            handle(stack, recording.event(), dequeue_count=attempt)
        assert stack.blob_names() == []
        assert stack.poison_envelopes() == []
        assert_untouched(stack, media_server, recording)
    assert classify(describe(raised.value)) == "transient"

    stack.table.update_entity({**keys, schema.CORRELATION_ID: recording.call_id})
    assert handle(stack, recording.event()) is ArchiveOutcome.ARCHIVED
    assert len(blobs_under(stack, folder(recording))) == 3


def test_a_recording_started_with_its_own_callback_url_is_quarantined_not_kept_waiting(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    """ACS sends that recording's callbacks to the URL its start named, so no call id ever
    arrives here: its event is quarantined at once, as before, not redelivered in vain."""
    recording = publish_recording(media_server, [1000], seed=7)
    register(stack, recording)
    options = {"content": "audio", "recordingStateCallbackUrl": "https://backend.example/acs"}
    stack.table.update_entity(
        {
            **schema.recording_keys(recording.recording_id),
            schema.CORRELATION_ID: "",
            schema.OPTIONS_JSON: json.dumps(options),
        }
    )

    assert handle(stack, recording.event()) is ArchiveOutcome.QUARANTINED

    assert_untouched(stack, media_server, recording)


def test_a_recording_whose_callbacks_named_two_calls_binds_nothing(
    stack: ArchiveStack,
    media_server: SyntheticMediaServer,
    a_and_b: tuple[SyntheticRecording, SyntheticRecording],
) -> None:
    """A replayed callback token won the race and wrote B's call as A's; A's real callback then
    left a conflict. Neither B's documents filed as A nor A's own event archive normally: both
    are quarantined, nothing is deleted from ACS, and B still archives as B."""
    a, b = a_and_b
    stack.table.update_entity(
        {
            **schema.recording_keys(a.recording_id),
            schema.CORRELATION_ID: b.call_id,
            schema.CORRELATION_CONFLICT: json.dumps({"correlationId": a.call_id}),
        }
    )

    assert handle(stack, forged(a, call_id=b.call_id, chunks_of=b)) is ArchiveOutcome.QUARANTINED
    assert handle(stack, a.event()) is ArchiveOutcome.QUARANTINED

    assert_untouched(stack, media_server, a, b)
    manifests = [n for n in blobs_under(stack, QUARANTINE_ROOT) if n.endswith("manifest.json")]
    assert manifests
    for name in manifests:
        assert schema.CORRELATION_CONFLICT in json.loads(stack.read_blob(name))["unverified"]
    assert handle(stack, b.event()) is ArchiveOutcome.ARCHIVED


def test_ids_are_compared_in_their_canonical_forms(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    """The registry holds the GUID in capitals and the server call id padded, in the other
    base64 alphabet: the same call, so the event is bound and archived under the registry's ids."""
    recording = publish_recording(media_server, [1000], seed=5)
    padded = recording.server_call_id.replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded) % 4)
    register_recording(stack.table, recording.call_id.upper(), padded, recording.recording_id)

    assert handle(stack, recording.event()) is ArchiveOutcome.ARCHIVED

    prefix = recording_prefix(
        recording.call_id.upper(), recording.recording_id, recording.start_time
    )
    assert len(blobs_under(stack, prefix)) == 3


def test_an_unbound_event_failing_for_good_writes_no_failed_row(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    unknown = publish_recording(media_server, [1000], seed=6)
    media_server.add_fault(unknown.chunks[0].content_path, Fault(times=10**6, status=503))

    with pytest.raises(SourceUnavailableError):
        handle(stack, unknown.event(), dequeue_count=5)

    assert stack.recording_entity(unknown.recording_id) is None


# --- any forged combination -----------------------------------------------------------------------


def _combination() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "call": st.sampled_from(["a", "b", "c", "random"]),
            "server": st.sampled_from(["a", "b", "c", "random"]),
            "recording": st.sampled_from(["a", "b", "c", "made-up"]),
            "chunks": st.sampled_from(["a", "b", "c", "made-up"]),
            "metadata_tail": st.sampled_from(["/content/acsmetadata", "/content/nosuchkind"]),
        }
    )


def test_no_forged_combination_moves_bytes_into_another_recordings_folder(
    stack: ArchiveStack, media_server: SyntheticMediaServer
) -> None:
    recordings = {
        "a": publish_recording(media_server, [1000, 1200], seed=11),
        "b": publish_recording(media_server, [1500], seed=12),
        "c": publish_recording(media_server, [1300], seed=13),
    }
    register(stack, recordings["a"])
    register(stack, recordings["b"])
    made_up = publish_recording(SyntheticMediaServer(), [1000], seed=14)  # never served

    def pick(name: str, field: str) -> str:
        if name in recordings:
            return str(getattr(recordings[name], field))
        return uuid.uuid4().hex if field != "recording_id" else "ZmFrZQ==" + uuid.uuid4().hex

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(combination=_combination())
    def check(combination: dict[str, Any]) -> None:
        rows_before = {name: _archive_row(stack, r) for name, r in recordings.items()}
        event = forged(
            recordings["a"],
            call_id=pick(combination["call"], "call_id"),
            server_call_id=pick(combination["server"], "server_call_id"),
            recording_id=pick(combination["recording"], "recording_id"),
            chunks_of=recordings.get(combination["chunks"], made_up),
        )
        for chunk in event["data"]["recordingStorageInfo"]["recordingChunks"]:
            chunk["metadataLocation"] = chunk["metadataLocation"].replace(
                "/content/acsmetadata", combination["metadata_tail"]
            )
        genuine = combination["metadata_tail"] == "/content/acsmetadata" and (
            combination["call"]
            == combination["server"]
            == combination["recording"]
            == combination["chunks"]
            in ("a", "b")
        )

        outcome = handle(stack, event)

        if outcome is ArchiveOutcome.LOST:
            raise AssertionError(f"a forged event declared a recording lost: {combination}")
        for name, recording in recordings.items():
            _assert_only_own_documents(stack, recording)
            _assert_only_own_deletions(media_server, recordings, name)
            if not (genuine and combination["recording"] == name):
                assert _archive_row(stack, recording) == rows_before[name], combination

    check()


def _archive_row(stack: ArchiveStack, recording: SyntheticRecording) -> dict[str, Any]:
    entity = stack.recording_entity(recording.recording_id) or {}
    return {key: value for key, value in entity.items() if key.startswith("Archive")}


def _assert_only_own_documents(stack: ArchiveStack, recording: SyntheticRecording) -> None:
    own = {chunk.document_id: chunk for chunk in recording.chunks}
    for blob in stack.container.list_blobs(
        name_starts_with=folder(recording), include=["metadata"]
    ):
        if blob.name.endswith("manifest.json"):
            manifest = json.loads(stack.read_blob(blob.name))
            assert {c["documentId"] for c in manifest["chunks"]} <= own.keys()
            continue
        assert blob.metadata["documentId"] in own, blob.name
        chunk = own[blob.metadata["documentId"]]
        expected = chunk.content if blob.metadata["kind"] == "content" else chunk.metadata_bytes
        assert stack.read_blob(blob.name) == expected


def _assert_only_own_deletions(
    media: SyntheticMediaServer, recordings: dict[str, SyntheticRecording], name: str
) -> None:
    """A recording's documents are deleted only once it is archived (every chunk of its own)."""
    if set(media.deleted) & document_paths(recordings[name]):
        assert name in ("a", "b"), f"{name} was never started through the API"
