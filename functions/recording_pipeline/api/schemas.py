"""Wire models of the recording API (camelCase, as the OpenAPI document shows them).

Only JSON *types* are checked here (strict: ``"true"`` is not a boolean); the ACS combination
rules live in :mod:`recording_pipeline.api.rules`, so both kinds of rejection come back as
the same 400 problem and the rules can be tested without HTTP.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

ContentType = Literal["audio", "audioVideo"]
ChannelType = Literal["mixed", "unmixed"]
FormatType = Literal["wav", "mp3", "mp4"]
RecordingState = Literal["active", "inactive", "stopped", "failed"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelAffinityItem(_Wire):
    participant: StrictStr = Field(
        description="Raw id of the participant (e.g. `8:acs:<guid>` or `4:+15551234567`)."
    )
    channel: StrictInt = Field(description="Audio channel 0-4 for this participant.")


class StartRecordingRequest(_Wire):
    """Body of ``POST /api/recordings``."""

    serverCallId: StrictStr | None = Field(  # noqa: N815 - wire name
        default=None, description="The call to record. Exactly one of this and callConnectionId."
    )
    callConnectionId: StrictStr | None = Field(  # noqa: N815 - wire name
        default=None,
        description="Call Automation connection id, for calls where ACS gives no serverCallId.",
    )
    content: ContentType | None = Field(
        default=None, description="`audio` or `audioVideo` (default `audioVideo`)."
    )
    channel: ChannelType | None = Field(
        default=None, description="`mixed` or `unmixed` (default `mixed`)."
    )
    format: FormatType | None = Field(
        default=None,
        description="`wav`, `mp3` or `mp4` (default `mp4` for audioVideo, `wav` for audio).",
    )
    pauseOnStart: StrictBool = Field(  # noqa: N815 - wire name
        default=False, description="Start the recording paused (state `inactive`)."
    )
    audioChannelParticipantOrdering: list[StrictStr] | None = Field(  # noqa: N815 - wire name
        default=None,
        description="Unmixed only: raw participant ids in channel order (at most 5, unique).",
    )
    channelAffinity: list[ChannelAffinityItem] | None = Field(  # noqa: N815 - wire name
        default=None,
        description="Unmixed only: fixed participant-to-channel pairs (channels 0-4, unique).",
    )
    recordingStateCallbackUrl: StrictStr | None = Field(  # noqa: N815 - wire name
        default=None,
        description="Where ACS posts recording state callbacks (default: this API's "
        "`/api/callbacks`, which records them in the registry).",
    )


class StartRecordingResponse(BaseModel):
    recordingId: str  # noqa: N815 - wire name
    state: str = Field(description="ACS state right after the start: `active` or `inactive`.")
    recordingKind: str | None = None  # noqa: N815 - wire name
    location: str = Field(description="Path of this recording's resource (id percent-encoded).")


class StateChangeResponse(BaseModel):
    recordingId: str  # noqa: N815 - wire name
    state: RecordingState


class StateHistoryEntry(BaseModel):
    state: str
    at: str = Field(description="UTC ISO-8601 time of the change.")
    source: str = Field(description="`api`, `callback` or `acs`.")
    eventId: str | None = None  # noqa: N815 - wire name


class RecordingOptionsView(BaseModel):
    content: ContentType
    channel: ChannelType
    format: FormatType
    pauseOnStart: bool  # noqa: N815 - wire name
    audioChannelParticipantOrdering: list[str]  # noqa: N815 - wire name
    channelAffinity: list[ChannelAffinityItem]  # noqa: N815 - wire name
    recordingStateCallbackUrl: str | None = None  # noqa: N815 - wire name


class ArchiveView(BaseModel):
    status: str | None = None
    callId: str | None = None  # noqa: N815 - wire name
    blobPrefix: str | None = None  # noqa: N815 - wire name
    manifestBlob: str | None = None  # noqa: N815 - wire name
    chunkCount: int | None = None  # noqa: N815 - wire name
    totalBytes: int | None = None  # noqa: N815 - wire name
    archivedAt: str | None = None  # noqa: N815 - wire name
    error: str | None = None
    overdueAt: str | None = Field(  # noqa: N815 - wire name
        default=None,
        description="When the reconciler found the recording stopped with no archive event "
        "(status `overdue`); kept if the recording is archived later.",
    )
    chunks: list[dict[str, object]] | dict[str, object] | None = Field(
        default=None,
        description="Archived chunks, or a pointer to the manifest when the list is too long.",
    )


class RegistryView(BaseModel):
    serverCallId: str | None = None  # noqa: N815 - wire name
    callConnectionId: str | None = None  # noqa: N815 - wire name
    options: RecordingOptionsView | None = None
    state: str
    stateHistory: list[StateHistoryEntry]  # noqa: N815 - wire name
    failure: str | None = Field(default=None, description="Why ACS could not start it.")
    createdAt: str | None = None  # noqa: N815 - wire name
    updatedAt: str | None = None  # noqa: N815 - wire name
    archive: ArchiveView | None = None


class LiveView(BaseModel):
    state: str = Field(description="What ACS reports now: `active` or `inactive`.")
    recordingKind: str | None = None  # noqa: N815 - wire name


class RecordingView(BaseModel):
    """Answer of ``GET /api/recordings/{recordingId}``."""

    recordingId: str  # noqa: N815 - wire name
    live: LiveView | None = Field(
        description="ACS's current view, or null when ACS no longer knows the recording "
        "(stopped or the call ended)."
    )
    registry: RegistryView


class HealthResponse(BaseModel):
    status: Literal["ok"]


class CallbackAck(BaseModel):
    received: int = Field(description="Events in the delivery.")
    recorded: int = Field(description="Events written to the registry.")
    ignored: int = Field(
        description="Events not recorded (logged): of types this API does not record, or about "
        "a recording this API did not start and ACS does not know."
    )


ArchiveStatus = Literal["archiving", "archived", "lost", "failed", "overdue"]


class RecordingSummary(BaseModel):
    """One item of ``GET /api/recordings``: the registry's row, without history or chunks."""

    recordingId: str  # noqa: N815 - wire name
    serverCallId: str | None = None  # noqa: N815 - wire name
    callConnectionId: str | None = None  # noqa: N815 - wire name
    state: str = Field(description="The registry's state (`active`, `inactive`, `stopped`, ...).")
    content: str | None = None
    channel: str | None = None
    format: str | None = None
    createdAt: str | None = None  # noqa: N815 - wire name
    updatedAt: str | None = None  # noqa: N815 - wire name
    archiveStatus: str | None = Field(  # noqa: N815 - wire name
        default=None,
        description="`archiving`, `archived`, `lost`, `failed`, `overdue` (stopped, no archive "
        "event in time), `erased`, or null.",
    )
    archivedAt: str | None = None  # noqa: N815 - wire name
    chunkCount: int | None = None  # noqa: N815 - wire name
    totalBytes: int | None = None  # noqa: N815 - wire name
    overdueAt: str | None = Field(  # noqa: N815 - wire name
        default=None, description="When the recording was found overdue, if it was."
    )


class RecordingList(BaseModel):
    """Answer of ``GET /api/recordings``."""

    items: list[RecordingSummary] = Field(
        description="In the registry's key order (by recording id), not by time; a page may "
        "hold fewer than `limit` items even when more follow."
    )
    continuationToken: str | None = Field(  # noqa: N815 - wire name
        description="Pass it back as `continuationToken` for the next page; null on the last."
    )


class ManifestChunk(BaseModel):
    """One chunk in ``manifest.json`` (the archiver may add fields)."""

    model_config = ConfigDict(extra="allow")

    index: int
    contentBlob: str  # noqa: N815 - wire name
    contentBytes: int  # noqa: N815 - wire name
    contentMd5: str = Field(description="Base64 MD5 of the content blob.")  # noqa: N815
    metadataBlob: str | None = None  # noqa: N815 - wire name
    metadataBytes: int | None = None  # noqa: N815 - wire name
    metadataMd5: str | None = None  # noqa: N815 - wire name


class ArchiveManifest(BaseModel):
    """``manifest.json`` as the archiver stored it (documented fields; others may follow)."""

    model_config = ConfigDict(extra="allow")

    schemaVersion: int  # noqa: N815 - wire name
    recordingId: str  # noqa: N815 - wire name
    callId: str | None = None  # noqa: N815 - wire name
    serverCallId: str | None = None  # noqa: N815 - wire name
    blobPrefix: str  # noqa: N815 - wire name
    chunks: list[ManifestChunk]
    totalBytes: int  # noqa: N815 - wire name
    participants: list[dict[str, object]]
    archivedAt: str  # noqa: N815 - wire name


class ArchivedFileLink(BaseModel):
    """Answer of ``GET /api/recordings/{recordingId}/archive/files/{fileName}``."""

    name: str = Field(description="The file's name inside the recording's archive folder.")
    size: int = Field(description="Bytes, as the manifest recorded them: verify the download.")
    contentMd5: str = Field(  # noqa: N815 - wire name
        description="Base64 MD5 of the file, as the manifest recorded it: verify the download."
    )
    url: str = Field(
        description="Read-only SAS URL for this one blob; GET it directly from Blob Storage."
    )
    expiresOn: str = Field(  # noqa: N815 - wire name
        description="UTC ISO-8601 time after which the URL no longer starts a download."
    )
