"""The start rules a client can check on its own, before any request: ACS's recording rules.

The API checks the same rules (and more: id lengths, the callback URL) and answers 400; checking
them here turns an impossible combination into a usage error (exit 2, like a bad ``--limit``)
instead of a refusal (exit 1), and saves the round trip. The CLI talks to the API over HTTP
only, so these rules are written out here; ``tests/unit/test_cli_rules.py`` holds them against
the API's own ``recording_pipeline.api.rules`` over every combination, so the two cannot drift.

- ``audioVideo`` is recorded ``mixed`` into ``mp4`` only;
- mixed ``audio`` is ``wav`` or ``mp3``; unmixed ``audio`` is ``wav`` only;
- participant ordering and channel affinity only for ``unmixed``;
- at most 5 unmixed channels: at most 5 participants in either list, channels 0-4, each channel
  and each participant at most once.
"""

from __future__ import annotations

from typing import Any

MAX_UNMIXED_CHANNELS = 5


def start_problems(body: dict[str, Any]) -> list[str]:
    """Every rule the start body breaks, one sentence each, naming the CLI's option."""
    content = body.get("content") or "audioVideo"
    channel = body.get("channel") or "mixed"
    media_format = body.get("format") or ("mp4" if content == "audioVideo" else "wav")
    problems = _media_problems(content, channel, media_format)
    ordering = body.get("audioChannelParticipantOrdering") or []
    affinity = body.get("channelAffinity") or []
    for option, participants in (
        ("--order", ordering),
        ("--affinity", [item["participant"] for item in affinity]),
    ):
        if not participants:
            continue
        if channel != "unmixed":
            problems.append(f"{option} is only for unmixed recordings (add --channel unmixed)")
            continue
        if len(participants) > MAX_UNMIXED_CHANNELS:
            problems.append(
                f"{option}: at most {MAX_UNMIXED_CHANNELS} unmixed channels "
                f"(got {len(participants)} participants)"
            )
        if len(set(participants)) != len(participants):
            problems.append(f"{option}: a participant is listed twice")
    if affinity and channel == "unmixed":
        channels = [item["channel"] for item in affinity]
        problems += [
            f"--affinity: channel {number} is not 0-{MAX_UNMIXED_CHANNELS - 1}"
            for number in channels
            if not 0 <= number < MAX_UNMIXED_CHANNELS
        ]
        if len(set(channels)) != len(channels):
            problems.append("--affinity: a channel is assigned twice")
    return problems


def _media_problems(content: str, channel: str, media_format: str) -> list[str]:
    if content == "audioVideo":
        problems = []
        if channel != "mixed":
            problems.append("--content audioVideo is recorded --channel mixed only")
        if media_format != "mp4":
            problems.append("--content audioVideo is recorded --format mp4 only")
        return problems
    if channel == "mixed" and media_format not in {"wav", "mp3"}:
        return ["mixed audio is recorded --format wav or mp3"]
    if channel == "unmixed" and media_format != "wav":
        return ["unmixed audio is recorded --format wav only"]
    return []
