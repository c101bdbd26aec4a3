"""Start-recording request rules, as ACS applies them; each rejection names the field.

Rules: content ``audioVideo`` is mixed MP4 only; mixed audio is WAV or MP3; unmixed audio is
WAV only; participant ordering and channel affinity apply to unmixed only; at most five
unmixed channels, numbered 0-4, each used once. Unset options take ACS's defaults
(audioVideo, mixed, mp4; for audio the format defaults to mp3 mixed and wav unmixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from emulator.constants import (
    CHANNEL_MIXED,
    CHANNEL_TYPES,
    CHANNEL_UNMIXED,
    CONTENT_AUDIO,
    CONTENT_AUDIO_VIDEO,
    CONTENT_TYPES,
    FORMAT_MP3,
    FORMAT_MP4,
    FORMAT_TYPES,
    FORMAT_WAV,
    LOCATOR_KINDS,
    MAX_UNMIXED_CHANNELS,
)
from emulator.errors import InvalidField, NotImplementedByEmulator
from emulator.models import RecordingOptions

_IDENTIFIER_KEYS = {
    "communicationUser": ("id", ""),
    "phoneNumber": ("value", "4:"),
    "microsoftTeamsUser": ("userId", "8:orgid:"),
    "microsoftTeamsApp": ("appId", "28:orgid:"),
}


@dataclass(frozen=True)
class CallTarget:
    """How the request located the call: one of these is set."""

    server_call_id: str = ""
    group_call_id: str = ""
    room_id: str = ""
    call_connection_id: str = ""


def parse_start_request(body: object) -> tuple[CallTarget, RecordingOptions]:
    if not isinstance(body, dict):
        raise InvalidField("body", "must be a JSON object")
    target = _call_target(body)
    content = _enum(body, "recordingContentType", CONTENT_TYPES, CONTENT_AUDIO_VIDEO)
    channel = _enum(body, "recordingChannelType", CHANNEL_TYPES, CHANNEL_MIXED)
    default_format = _default_format(content, channel)
    fmt = _enum(body, "recordingFormatType", FORMAT_TYPES, default_format)
    _check_combination(content, channel, fmt)
    ordering = _ordering(body, channel)
    affinity = _affinity(body, channel)
    if body.get("externalStorage"):
        raise NotImplementedByEmulator(
            "'externalStorage' (bring your own storage) is not implemented by the emulator."
        )
    pause_on_start = body.get("pauseOnStart") or False
    if not isinstance(pause_on_start, bool):
        raise InvalidField("pauseOnStart", "must be a boolean", pause_on_start)
    options = RecordingOptions(
        content_type=content,
        channel_type=channel,
        format_type=fmt,
        participant_ordering=ordering,
        channel_affinity=affinity,
        callback_uri=_callback_uri(body),
        pause_on_start=pause_on_start,
    )
    return target, options


def _call_target(body: dict) -> CallTarget:
    locator = body.get("callLocator")
    connection_id = body.get("callConnectionId")
    if locator and connection_id:
        raise InvalidField(
            "callLocator", "give either 'callLocator' or 'callConnectionId', not both"
        )
    if connection_id:
        if not isinstance(connection_id, str):
            raise InvalidField("callConnectionId", "must be a string", connection_id)
        return CallTarget(call_connection_id=connection_id)
    if not isinstance(locator, dict):
        raise InvalidField("callLocator", "is required (or 'callConnectionId')")
    kind = locator.get("kind") or _infer_kind(locator)
    if kind not in LOCATOR_KINDS:
        raise InvalidField("callLocator.kind", f"must be one of {', '.join(LOCATOR_KINDS)}", kind)
    key = LOCATOR_KINDS[kind]
    value = locator.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidField(f"callLocator.{key}", f"is required for kind '{kind}'")
    return CallTarget(
        server_call_id=value if key == "serverCallId" else "",
        group_call_id=value if key == "groupCallId" else "",
        room_id=value if key == "roomId" else "",
    )


def _infer_kind(locator: dict) -> str | None:
    for kind, key in LOCATOR_KINDS.items():
        if locator.get(key):
            return kind
    return None


def _enum(body: dict, field: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(field)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidField(field, f"must be one of {', '.join(allowed)}", value)
    return value


def _default_format(content: str, channel: str) -> str:
    if content == CONTENT_AUDIO_VIDEO:
        return FORMAT_MP4
    return FORMAT_WAV if channel == CHANNEL_UNMIXED else FORMAT_MP3


def _check_combination(content: str, channel: str, fmt: str) -> None:
    if content == CONTENT_AUDIO_VIDEO and channel != CHANNEL_MIXED:
        raise InvalidField(
            "recordingChannelType", "content type 'audioVideo' supports only 'mixed'", channel
        )
    if content == CONTENT_AUDIO_VIDEO and fmt != FORMAT_MP4:
        raise InvalidField(
            "recordingFormatType", "content type 'audioVideo' supports only 'mp4'", fmt
        )
    if (
        content == CONTENT_AUDIO
        and channel == CHANNEL_MIXED
        and fmt not in (FORMAT_WAV, FORMAT_MP3)
    ):
        raise InvalidField("recordingFormatType", "mixed 'audio' supports only 'wav' or 'mp3'", fmt)
    if content == CONTENT_AUDIO and channel == CHANNEL_UNMIXED and fmt != FORMAT_WAV:
        raise InvalidField("recordingFormatType", "unmixed 'audio' supports only 'wav'", fmt)


def raw_id_of(model: object, field: str) -> str:
    """The raw id of a CommunicationIdentifierModel, from ``rawId`` or its typed member."""
    if not isinstance(model, dict):
        raise InvalidField(field, "must be a communication identifier object", model)
    raw_id = model.get("rawId")
    if isinstance(raw_id, str) and raw_id:
        return raw_id
    for kind, (key, prefix) in _IDENTIFIER_KEYS.items():
        member = model.get(kind)
        if isinstance(member, dict) and isinstance(member.get(key), str):
            return prefix + member[key]
    raise InvalidField(field, "must carry 'rawId' or a typed identifier")


def _ordering(body: dict, channel: str) -> tuple[str, ...]:
    ordering = body.get("audioChannelParticipantOrdering") or []
    if not isinstance(ordering, list):
        raise InvalidField("audioChannelParticipantOrdering", "must be a list", ordering)
    if ordering and channel != CHANNEL_UNMIXED:
        raise InvalidField(
            "audioChannelParticipantOrdering", "is only allowed with 'unmixed' channel type"
        )
    if len(ordering) > MAX_UNMIXED_CHANNELS:
        raise InvalidField(
            "audioChannelParticipantOrdering",
            f"may list at most {MAX_UNMIXED_CHANNELS} participants",
            len(ordering),
        )
    ids = tuple(
        raw_id_of(item, f"audioChannelParticipantOrdering[{i}]") for i, item in enumerate(ordering)
    )
    if len(set(ids)) != len(ids):
        raise InvalidField("audioChannelParticipantOrdering", "must not repeat a participant")
    return ids


def _affinity(body: dict, channel: str) -> tuple[tuple[int, str], ...]:
    affinity = body.get("channelAffinity") or []
    if not isinstance(affinity, list):
        raise InvalidField("channelAffinity", "must be a list", affinity)
    if affinity and channel != CHANNEL_UNMIXED:
        raise InvalidField("channelAffinity", "is only allowed with 'unmixed' channel type")
    if len(affinity) > MAX_UNMIXED_CHANNELS:
        raise InvalidField(
            "channelAffinity", f"may have at most {MAX_UNMIXED_CHANNELS} entries", len(affinity)
        )
    pairs: list[tuple[int, str]] = []
    for i, item in enumerate(affinity):
        field = f"channelAffinity[{i}]"
        if not isinstance(item, dict):
            raise InvalidField(field, "must be an object with 'channel' and 'participant'")
        number = item.get("channel")
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidField(f"{field}.channel", "is required and must be an integer", number)
        if not 0 <= number < MAX_UNMIXED_CHANNELS:
            raise InvalidField(
                f"{field}.channel", f"must be between 0 and {MAX_UNMIXED_CHANNELS - 1}", number
            )
        pairs.append((number, raw_id_of(item.get("participant"), f"{field}.participant")))
    channels = [number for number, _ in pairs]
    if len(set(channels)) != len(channels):
        raise InvalidField("channelAffinity", "each channel may be used only once", channels)
    participants = [raw_id for _, raw_id in pairs]
    if len(set(participants)) != len(participants):
        raise InvalidField("channelAffinity", "each participant may have only one channel")
    return tuple(pairs)


def _callback_uri(body: dict) -> str | None:
    uri = body.get("recordingStateCallbackUri")
    if uri is None:
        return None
    parsed = urlparse(uri) if isinstance(uri, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidField("recordingStateCallbackUri", "must be an absolute http(s) URL", uri)
    return uri
