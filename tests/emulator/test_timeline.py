"""The render plan on its own: who is heard when, chunk cuts and pause placement."""

from __future__ import annotations

from emulator.media.timeline import assign_channels, build_plan
from emulator.models import Call, Participant, Recording, RecordingOptions

OPTIONS = RecordingOptions(content_type="audio", channel_type="unmixed", format_type="wav")


def _call(*presence: tuple[str, list[list[float | None]]]) -> Call:
    call = Call("s", "c", "cc", None, 0.0)
    for index, (raw_id, spans) in enumerate(presence):
        call.participants[raw_id] = Participant(raw_id, 440 + 100 * index, index, spans)
    return call


def test_pieces_follow_presence_and_skip_pauses() -> None:
    call = _call(("8:acs:a", [[0.0, None]]), ("8:acs:b", [[2.0, 6.0]]))
    recording = Recording(
        "r",
        "s",
        OPTIONS,
        0.0,
        active_spans=[[0.0, 3.0], [5.0, 8.0]],
        pauses=[[3.0, 5.0]],
        stopped_at=8.0,
    )
    plan = build_plan(call, recording, max_chunk_seconds=3600)
    (chunk,) = plan.chunks
    assert [(p.start, p.end, p.present) for p in chunk.pieces] == [
        (0, 32_000, (0,)),
        (32_000, 64_000, (0, 1)),  # content 2-3 s and 5-6 s are adjacent once the pause is cut
        (64_000, 96_000, (0,)),
    ]
    assert chunk.pauses == [(3.0, 2.0)]
    assert plan.total_samples == 96_000


def test_chunks_are_cut_on_whole_video_frames() -> None:
    call = _call(("8:acs:a", [[0.0, None]]))
    recording = Recording("r", "s", OPTIONS, 0.0, active_spans=[[0.0, 10.0]], stopped_at=10.0)
    plan = build_plan(call, recording, max_chunk_seconds=3.03)
    assert [c.samples for c in plan.chunks] == [48_000, 48_000, 48_000, 16_000]
    assert [c.wall_start for c in plan.chunks] == [0.0, 3.0, 6.0, 9.0]


def test_channel_assignment_order() -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    channels = assign_channels(ids, ordering=("e", "zz"), affinity=((0, "c"),))
    assert channels == {"c": 0, "e": 1, "a": 2, "b": 3, "d": 4}
