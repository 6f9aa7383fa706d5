"""The SSE parser reads the admin API's frames as a browser would."""

from __future__ import annotations

from tui.sse import SseEvent, SseParser


def feed_all(text: str) -> tuple[list[SseEvent], SseParser]:
    parser = SseParser()
    events = [e for line in text.split("\n") if (e := parser.feed(line)) is not None]
    return events, parser


def test_events_with_ids_types_comments_and_retry() -> None:
    text = (
        "retry: 2000\n: connected\n\n"
        'id: 7\nevent: request\ndata: {"a": 1}\n\n'
        ": keep-alive\n\n"
        'event: gap\ndata:{"reason": "x"}\n\n'
    )
    events, parser = feed_all(text)
    assert events == [
        SseEvent("request", '{"a": 1}', "7"),
        SseEvent("gap", '{"reason": "x"}', None),
    ]
    assert parser.retry_ms == 2000


def test_multi_line_data_and_default_type() -> None:
    events, _ = feed_all("data: one\ndata: two\n\n")
    assert events == [SseEvent("message", "one\ntwo", None)]


def test_a_frame_without_data_dispatches_nothing() -> None:
    events, _ = feed_all("event: request\nid: 3\n\ndata: x\n\n")
    assert events == [SseEvent("message", "x", None)]  # the id and type were reset
