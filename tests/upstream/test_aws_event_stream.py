"""EventStreamParser: AWS event-stream frames in, (event, data) out, whatever the chunking;
a frame that does not check out is UpstreamFailed."""

from __future__ import annotations

import json
import random

import pytest

from gateway.errors import UpstreamFailed
from gateway.protocols.bedrock import BEDROCK
from gateway.translate.sse import SSEEvent
from gateway.upstream.aws_event_stream import EventStreamParser
from gateway.vocabulary import Op
from tests.support.fake_bedrock import Reply, encode_frame, exception_frame, stream_frames

TOOL = {"toolUseId": "tu_1", "name": "lookup", "input": {"q": "metadata messageStop"}}
FRAMES = stream_frames(Reply(text="metadata is a word too", tool_use=TOOL))
WHOLE = b"".join(FRAMES)


def events_of(chunks: list[bytes]) -> list[SSEEvent]:
    parser = EventStreamParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    return events + parser.close()


def test_every_event_with_its_type_and_payload() -> None:
    events = events_of([WHOLE])
    assert [e.event for e in events][:2] == ["messageStart", "contentBlockDelta"]
    assert [e.event for e in events][-2:] == ["messageStop", "metadata"]
    assert json.loads(events[-1].data)["usage"]["totalTokens"] == 17
    assert len(events) == len(FRAMES)


@pytest.mark.parametrize("seed", range(20))
def test_frames_split_anywhere_give_the_same_events(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(WHOLE)), rng.randint(1, 40)))
    chunks = [WHOLE[a:b] for a, b in zip([0, *cuts], [*cuts, len(WHOLE)], strict=True)]
    assert events_of(chunks) == events_of([WHOLE])


def test_byte_by_byte() -> None:
    assert events_of([WHOLE[i : i + 1] for i in range(len(WHOLE))]) == events_of([WHOLE])


def test_an_exception_is_named_by_its_exception_type() -> None:
    events = events_of([FRAMES[0], exception_frame("throttlingException", "slow down")])
    assert events[-1] == SSEEvent("throttlingException", '{"message": "slow down"}')


@pytest.mark.parametrize("where", [2, 9, -1], ids=["prelude-crc", "headers", "message-crc"])
def test_a_corrupt_frame_is_upstream_failed(where: int) -> None:
    frame = bytearray(FRAMES[1])
    frame[where] ^= 0x01
    parser = EventStreamParser()
    assert parser.feed(FRAMES[0])
    with pytest.raises(UpstreamFailed, match="malformed"):
        parser.feed(bytes(frame))
    with pytest.raises(UpstreamFailed):  # nothing after a bad frame is trusted
        parser.feed(FRAMES[2])


def test_a_frame_without_its_type_header_is_upstream_failed() -> None:
    with pytest.raises(UpstreamFailed, match="type header"):
        EventStreamParser().feed(encode_frame({":message-type": "event"}, b"{}"))


def test_a_stream_that_ends_inside_a_frame_is_upstream_failed() -> None:
    parser = EventStreamParser()
    parser.feed(WHOLE[:-3])
    with pytest.raises(UpstreamFailed, match="inside a frame"):
        parser.close()


def test_the_end_mark_is_in_the_metadata_frame_only() -> None:
    """The usage comes in `metadata`, after messageStop: that frame ends the answer, and its
    mark is not found in any other frame (the text and tool input say 'metadata' too)."""
    (mark,) = BEDROCK.end_marks(Op.CHAT)
    assert [mark in frame for frame in FRAMES] == [False] * (len(FRAMES) - 1) + [True]
