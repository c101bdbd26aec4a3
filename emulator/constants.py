"""Fixed facts of the emulated service: API versions, wire values and limits.

Kept in one place so a validation message, a test and the README quote the same value.
"""

from __future__ import annotations

# api-version values azure-communication-callautomation 1.6.0 knows (its ApiVersion enum).
SUPPORTED_API_VERSIONS = (
    "2023-03-06",
    "2023-10-15",
    "2024-04-15",
    "2024-09-15",
    "2025-05-15",
    "2025-06-15",
    "2026-03-12",
)

STATE_ACTIVE = "active"
STATE_INACTIVE = "inactive"
RECORDING_KIND = "azureCommunicationServices"

CONTENT_AUDIO = "audio"
CONTENT_AUDIO_VIDEO = "audioVideo"
CONTENT_TYPES = (CONTENT_AUDIO, CONTENT_AUDIO_VIDEO)
CHANNEL_MIXED = "mixed"
CHANNEL_UNMIXED = "unmixed"
CHANNEL_TYPES = (CHANNEL_MIXED, CHANNEL_UNMIXED)
FORMAT_WAV = "wav"
FORMAT_MP3 = "mp3"
FORMAT_MP4 = "mp4"
FORMAT_TYPES = (FORMAT_WAV, FORMAT_MP3, FORMAT_MP4)
LOCATOR_KINDS = {
    "serverCallLocator": "serverCallId",
    "groupCallLocator": "groupCallId",
    "roomCallLocator": "roomId",
}

# Media as the Call Recording overview specifies it.
SAMPLE_RATE = 16_000
SAMPLE_WIDTH_BYTES = 2
VIDEO_WIDTH = 1920
VIDEO_HEIGHT = 1080
VIDEO_FPS = 16
MAX_UNMIXED_CHANNELS = 5
MP3_BIT_RATE = 48_000
AAC_BIT_RATE = 48_000

DEFAULT_MAX_CHUNK_SECONDS = 4 * 3600.0
DEFAULT_RETENTION_SECONDS = 24 * 3600.0
# x-ms-date may be this far from the emulator's wall clock (Azure Storage allows 15 minutes).
HMAC_CLOCK_SKEW_SECONDS = 15 * 60

# Tones: integer Hz keeps a one-second sample table exactly periodic, so long media is tiled.
MIN_TONE_HZ = 100
MAX_TONE_HZ = 7000
DEFAULT_TONES_HZ = (440, 700, 1000, 1300, 1700, 2100, 2600, 3100, 3700, 4300)
TONE_AMPLITUDE = 0.18

EVENT_TYPE_FILE_STATUS = "Microsoft.Communication.RecordingFileStatusUpdated"
EVENT_TYPE_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
CALLBACK_TYPE_STATE_CHANGED = "Microsoft.Communication.RecordingStateChanged"
END_REASON_SESSION_ENDED = "SessionEnded"
END_REASON_CHUNK_MAX = "ChunkMaximumSizeExceeded"
SESSION_END_CALL_ENDED = "CallEnded"
SESSION_END_STOPPED = "RecordingStopped"

DEFAULT_REGION_HOST = "emulator.asm.skype.com"
ALLOWED_MEDIA_HOST_SUFFIXES = (
    ".asm.skype.com",
    ".asyncgw.teams.microsoft.com",
    ".ams.gov.teams.microsoft.us",
)
DEFAULT_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator"
    "/providers/Microsoft.Communication/communicationServices/acs-emulator"
)
DEFAULT_IMMUTABLE_RESOURCE_ID = "6a1d0c3e-5f4b-4c8e-9a2d-0e6f7b8c9d10"
CALLBACK_TOKEN_LIFETIME_SECONDS = 300
OIDC_METADATA_PATH = "/calling/.well-known/acsopenidconfiguration"
JWKS_PATH = "/calling/keys"

# The Event Grid custom topic (CloudEventSchemaV1_0 input schema) the pipeline publishes to.
TOPIC_PATH = "/api/events"
#: api-version values of the custom topic's publish API (the SDK sends 2018-01-01).
TOPIC_API_VERSIONS = ("2018-01-01",)
#: "Event size 1 MB" and "the array can have a total size of up to 1 MB" (Event Grid quotas and
#: "Publish events to custom topics"): read as 1,000,000 bytes, the stricter of the two readings
#: of "MB", so what passes here passes in Azure.
TOPIC_MAX_EVENT_BYTES = 1_000_000
TOPIC_MAX_REQUEST_BYTES = 1_000_000
#: "Incoming events per batch: 5,000".
TOPIC_MAX_EVENTS_PER_REQUEST = 5_000
