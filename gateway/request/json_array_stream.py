"""Gemini's `streamGenerateContent` without `alt=sse`: the same chunks, as one JSON array.

The gateway always asks Gemini upstreams for SSE (and every translator writes SSE), so
this reframes finished SSE events for the client: `[` chunk `,\\r\\n` chunk ... `]`, which
is what Gemini itself sends. Each chunk still goes out as soon as its event is complete.
"""

from __future__ import annotations

from gateway.translate.sse import SSEParser

JSON_ARRAY_CONTENT_TYPE = "application/json; charset=UTF-8"


class JsonArrayFraming:
    """SSE bytes in, the pieces of a JSON array of the events' data out."""

    __slots__ = ("_opened", "_parser")

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._opened = False

    def feed(self, sse: bytes) -> bytes:
        out = b""
        for event in self._parser.feed(sse):
            out += (b",\r\n" if self._opened else b"[") + event.data.encode()
            self._opened = True
        return out

    def close(self) -> bytes:
        """The array's end (with any event that came without its blank line)."""
        out = b""
        for event in self._parser.close():
            out += (b",\r\n" if self._opened else b"[") + event.data.encode()
            self._opened = True
        return out + (b"]" if self._opened else b"[]")
