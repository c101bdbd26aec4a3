"""The CLI's own start rules (``recordings_cli.rules``) agree with the API's over every combination.

The CLI may not import the function code (it speaks HTTP only), so it keeps its own copy of the
ACS rules it can check before a request. Hypothesis throws every combination of content,
channel, format, ordering and affinity at both: the CLI refuses exactly what the API refuses
for those rules, so a usage error (exit 2) is never a request the API would have taken, and no
request the CLI lets through is refused for a rule it knows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from recording_pipeline.api.problems import ProblemError
from recording_pipeline.api.rules import validate_start_request
from recording_pipeline.api.schemas import StartRecordingRequest
from recordings_cli.rules import start_problems

PARTICIPANTS = st.sampled_from([f"8:acs:p{number}" for number in range(8)] + ["4:+15550100"])
#: Mostly channels 0-4, so that a list is often valid but for one rule, sometimes outside.
CHANNELS = st.integers(0, 4) | st.integers(-2, 7)
#: Every combination, with the unmixed WAV one (where ordering and affinity apply) drawn often.
MEDIA = st.sampled_from([None, "audio", "audioVideo"]).flatmap(
    lambda content: st.tuples(
        st.just(content),
        st.sampled_from([None, "mixed", "unmixed"]),
        st.sampled_from([None, "wav", "mp3", "mp4"]),
    )
) | st.just(("audio", "unmixed", "wav"))


@st.composite
def start_bodies(draw: st.DrawFn) -> dict[str, Any]:
    content, channel, media_format = draw(MEDIA)
    body: dict[str, Any] = {
        "serverCallId": "server-call",
        "content": content,
        "channel": channel,
        "format": media_format,
        "audioChannelParticipantOrdering": draw(
            st.none() | st.lists(PARTICIPANTS, min_size=1, max_size=7)
        ),
        "channelAffinity": draw(
            st.none()
            | st.lists(
                st.fixed_dictionaries({"participant": PARTICIPANTS, "channel": CHANNELS}),
                min_size=1,
                max_size=7,
            )
        ),
    }
    return {key: value for key, value in body.items() if value is not None}


def _api_refuses(body: dict[str, Any]) -> bool:
    try:
        validate_start_request(StartRecordingRequest.model_validate(body))
    except ProblemError as problem:
        assert problem.status == 400
        return True
    return False


@settings(max_examples=600, deadline=None)
@given(body=start_bodies())
def test_the_cli_refuses_exactly_what_the_api_refuses(body: dict[str, Any]) -> None:
    assert bool(start_problems(body)) == _api_refuses(body), start_problems(body)


def test_the_issue_examples_are_refused_with_the_option_named() -> None:
    assert start_problems({"content": "audioVideo", "format": "wav"}) == [
        "--content audioVideo is recorded --format mp4 only"
    ]
    assert start_problems(
        {
            "content": "audio",
            "channel": "unmixed",
            "channelAffinity": [{"participant": "a", "channel": 9}],
        }
    ) == ["--affinity: channel 9 is not 0-4"]
    assert start_problems({"content": "audio", "channel": "mixed", "format": "wav"}) == []
