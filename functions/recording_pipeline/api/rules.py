"""The ACS rules for a recording request, checked before any call to ACS.

ACS would reject the same combinations, but only after a network round trip and with a message
that does not name our field. Checking here gives the caller every broken rule at once, as a
400 that names the field, and guarantees a rejected request changes nothing anywhere.

The rules (from the Call Recording overview and the Call Automation API):

- exactly one of ``serverCallId`` and ``callConnectionId``;
- ``audioVideo`` is recorded ``mixed`` into ``mp4`` only;
- mixed ``audio`` is ``wav`` or ``mp3``; unmixed ``audio`` is ``wav`` only;
- ``audioChannelParticipantOrdering`` and ``channelAffinity`` only for ``unmixed``;
- at most 5 unmixed channels: at most 5 participants in either list, channels 0-4, each channel
  and each participant at most once.

Besides ACS's rules, every id meets ``input_rules``: valid Unicode text, no control characters,
at most 1,024 characters, and where the id becomes a Table key (a recording id; a participant,
whose id keys the participant index once the recording is archived; an Idempotency-Key) it must
fit the key once encoded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from recording_pipeline.api.problems import FieldError, ProblemError, invalid_request
from recording_pipeline.api.schemas import StartRecordingRequest
from recording_pipeline.input_rules import MAX_ID_CHARS, id_problem, key_id_problem
from recording_pipeline.recording_options import RecordingOptions
from recording_pipeline.registry.schema import PARTICIPANT_PARTITION_PREFIX

MAX_UNMIXED_CHANNELS = 5
MAX_ID_LENGTH = MAX_ID_CHARS
MAX_IDEMPOTENCY_KEY_LENGTH = 255
#: Longer URLs are refused by many HTTP stacks on the way to this app.
MAX_CALLBACK_URL_LENGTH = 2048
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def validate_start_request(request: StartRecordingRequest) -> RecordingOptions:
    """Apply every ACS rule and fill in defaults.

    :raises ProblemError: 400 listing every broken rule, the first one's field in ``field``.
    """
    errors: list[FieldError] = []
    errors += _call_locator_errors(request)
    content = request.content or "audioVideo"
    channel = request.channel or "mixed"
    media_format = request.format or ("mp4" if content == "audioVideo" else "wav")
    errors += _media_errors(content, channel, media_format)
    errors += _ordering_errors(request.audioChannelParticipantOrdering, channel)
    errors += _affinity_errors(request, channel)
    if request.recordingStateCallbackUrl is not None:
        errors += _callback_url_errors(request.recordingStateCallbackUrl)
    if errors:
        raise invalid_request(errors)
    return RecordingOptions(
        server_call_id=request.serverCallId,
        call_connection_id=request.callConnectionId,
        content=content,
        channel=channel,
        format=media_format,
        pause_on_start=request.pauseOnStart,
        participant_ordering=tuple(request.audioChannelParticipantOrdering or ()),
        channel_affinity=tuple(
            (item.participant, item.channel) for item in request.channelAffinity or ()
        ),
        callback_url=request.recordingStateCallbackUrl,
    )


def validate_recording_id(recording_id: str) -> str:
    """:raises ProblemError: 400 when the path carries no usable id (one that cannot key the
    registry is not one ACS issues)."""
    problem = key_id_problem(recording_id)
    if problem is not None:
        raise invalid_request([FieldError(field="recordingId", detail=problem)])
    return recording_id


def validate_query_id(field: str, value: str | None) -> str | None:
    """:raises ProblemError: 400 naming the query parameter when it breaks the id rules."""
    problem = None if value is None else id_problem(value)
    if problem is not None:
        raise invalid_request([FieldError(field=field, detail=problem)])
    return value


def validate_idempotency_key(key: str) -> str:
    """Printable ASCII, 1-255 characters: it is stored as a Table key and hashed into a UUID.

    :raises ProblemError: 400 naming the ``Idempotency-Key`` header.
    """
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "!" <= char <= "~" for char in key
    ):
        raise invalid_request(
            [
                FieldError(
                    field="Idempotency-Key",
                    detail=f"must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters "
                    "without spaces",
                )
            ]
        )
    problem = key_id_problem(key)
    if problem is not None:
        raise invalid_request([FieldError(field="Idempotency-Key", detail=problem)])
    return key


def _call_locator_errors(request: StartRecordingRequest) -> list[FieldError]:
    given = [
        name
        for name, value in (
            ("serverCallId", request.serverCallId),
            ("callConnectionId", request.callConnectionId),
        )
        if value is not None
    ]
    if len(given) != 1:
        field = "callConnectionId" if len(given) == 2 else "serverCallId"
        return [
            FieldError(
                field=field,
                detail="exactly one of serverCallId and callConnectionId is required"
                + (", not both" if len(given) == 2 else ""),
            )
        ]
    value = request.serverCallId if given[0] == "serverCallId" else request.callConnectionId
    return _id_errors(given[0], value or "")


def _id_errors(field: str, value: str, *, key_prefix: str | None = None) -> list[FieldError]:
    """The id rules; with ``key_prefix``, also the Table key the id will make."""
    if key_prefix is None:
        problem = id_problem(value)
    else:
        problem = key_id_problem(value, key_prefix=key_prefix)
    return [] if problem is None else [FieldError(field=field, detail=problem)]


def _media_errors(content: str, channel: str, media_format: str) -> list[FieldError]:
    if content == "audioVideo":
        errors = []
        if channel != "mixed":
            errors.append(FieldError(field="channel", detail="audioVideo is recorded mixed only"))
        if media_format != "mp4":
            errors.append(FieldError(field="format", detail="audioVideo is recorded as mp4 only"))
        return errors
    if channel == "mixed" and media_format not in {"wav", "mp3"}:
        return [FieldError(field="format", detail="mixed audio is recorded as wav or mp3")]
    if channel == "unmixed" and media_format != "wav":
        return [FieldError(field="format", detail="unmixed audio is recorded as wav only")]
    return []


def _ordering_errors(ordering: list[str] | None, channel: str) -> list[FieldError]:
    field = "audioChannelParticipantOrdering"
    if not ordering:
        return []
    if channel != "unmixed":
        return [FieldError(field=field, detail="is allowed only for unmixed recordings")]
    errors = _participant_list_errors(field, ordering)
    if len(set(ordering)) != len(ordering):
        errors.append(FieldError(field=field, detail="must not list a participant twice"))
    return errors


def _affinity_errors(request: StartRecordingRequest, channel: str) -> list[FieldError]:
    field = "channelAffinity"
    affinity = request.channelAffinity
    if not affinity:
        return []
    if channel != "unmixed":
        return [FieldError(field=field, detail="is allowed only for unmixed recordings")]
    errors = _participant_list_errors(field, [item.participant for item in affinity])
    for index, item in enumerate(affinity):
        if not 0 <= item.channel < MAX_UNMIXED_CHANNELS:
            errors.append(
                FieldError(
                    field=f"{field}[{index}].channel",
                    detail=f"channel must be 0-{MAX_UNMIXED_CHANNELS - 1} (got {item.channel})",
                )
            )
    channels = [item.channel for item in affinity]
    if len(set(channels)) != len(channels):
        errors.append(FieldError(field=field, detail="each channel may be assigned only once"))
    participants = [item.participant for item in affinity]
    if len(set(participants)) != len(participants):
        errors.append(FieldError(field=field, detail="must not list a participant twice"))
    return errors


def _participant_list_errors(field: str, participants: list[str]) -> list[FieldError]:
    errors = []
    if len(participants) > MAX_UNMIXED_CHANNELS:
        errors.append(
            FieldError(
                field=field,
                detail=f"at most {MAX_UNMIXED_CHANNELS} unmixed channels "
                f"(got {len(participants)} participants)",
            )
        )
    for index, participant in enumerate(participants):
        errors += _id_errors(
            f"{field}[{index}]", participant, key_prefix=PARTICIPANT_PARTITION_PREFIX
        )
    return errors


def _callback_url_errors(url: str) -> list[FieldError]:
    field = "recordingStateCallbackUrl"
    problem = id_problem(url, max_chars=MAX_CALLBACK_URL_LENGTH)
    if problem is not None:
        return [FieldError(field=field, detail=problem)]
    rule = "must be an absolute https URL without credentials (http only for 127.0.0.1/localhost)"
    try:
        parsed = urlparse(url)
        hostname = parsed.hostname
        parsed.port  # noqa: B018 - a port that is not a number raises here, not later at ACS
    except ValueError:  # e.g. "https://[::1", an IPv6 literal never closed
        return [FieldError(field=field, detail=f"{rule}; it cannot be parsed")]
    secure = parsed.scheme == "https"
    loopback = parsed.scheme == "http" and hostname in _LOOPBACK_HOSTS
    if not hostname or not (secure or loopback) or parsed.username or parsed.password:
        return [FieldError(field=field, detail=rule)]
    return []


def problem_from_body_errors(errors: list[dict[str, Any]]) -> ProblemError:
    """Turn pydantic's type errors for the body into the same 400 the rules produce."""
    return invalid_request([_field_error(error) for error in errors] or [_unreadable_body()])


def _field_error(error: dict[str, Any]) -> FieldError:
    location = [
        part for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")
    ]
    field = ""
    for part in location:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    message = str(error.get("msg", "is invalid"))
    if error.get("type") == "extra_forbidden":
        message = "is not a known field"
    if error.get("type") == "json_invalid":
        return _unreadable_body()
    return FieldError(field=field or "body", detail=message)


def _unreadable_body() -> FieldError:
    return FieldError(field="body", detail="must be a JSON object")
