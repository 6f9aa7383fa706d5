"""The incremental SSE parser: complete events as soon as they are complete, any chunking."""

from __future__ import annotations

import pytest

from gateway.translate.sse import SSEEvent, SSEParser, encode
from tests.translate.fixtures import STREAMS, load_bytes

MIXED = (
    b": a comment\n"
    b'event: message_start\ndata: {"a":1}\n\n'
    b"id: 7\nretry: 100\ndata: line one\ndata: line two\n\n"
    b"data:no-space\r\n\r\n"
    b"event: ping\n\n"
    b"data: \xc3\xa9t\xc3\xa9\r\r"
)
EXPECTED = [
    SSEEvent("message_start", '{"a":1}'),
    SSEEvent("", "line one\nline two"),
    SSEEvent("", "no-space"),
    SSEEvent("", "été"),
]


def test_parses_fields_comments_and_line_endings() -> None:
    assert SSEParser().feed(MIXED) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    parser = SSEParser()
    got: list[SSEEvent] = []
    for i in range(0, len(MIXED), size):
        got.extend(parser.feed(MIXED[i : i + size]))
    assert got + parser.close() == EXPECTED


def test_event_is_returned_by_the_chunk_that_completes_it() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == [SSEEvent("", "one")]
    assert parser.feed(b"o\n\n") == [SSEEvent("", "two")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("", "x")]
    assert parser.feed(b"\ndata: y\n\n") == [SSEEvent("", "y")]


def test_close_flushes_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: tail") == []
    assert parser.close() == [SSEEvent("", "tail")]
    assert parser.close() == []


@pytest.mark.parametrize("path", [p for paths in STREAMS.values() for p in paths])
def test_fixtures_parse_identically_whole_and_byte_by_byte(path: str) -> None:
    raw = load_bytes(path)
    whole = SSEParser().feed(raw)
    parser = SSEParser()
    pieces = [e for i in range(len(raw)) for e in parser.feed(raw[i : i + 1])]
    assert pieces == whole
    assert whole and all(e.data for e in whole)


def test_encode_round_trips_through_the_parser() -> None:
    raw = encode('{"x":1}', "content_block_delta") + encode(b"[DONE]")
    assert SSEParser().feed(raw) == [
        SSEEvent("content_block_delta", '{"x":1}'),
        SSEEvent("", "[DONE]"),
    ]
