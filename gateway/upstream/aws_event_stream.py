"""AWS event-stream frames (Bedrock's ConverseStream) in, events out, like SSEParser.

Each frame is a prelude (lengths and their CRC), typed headers, a payload and a CRC of the
whole; botocore's EventStreamBuffer checks and splits them. An event is named by its
`:event-type` header (messageStart, contentBlockDelta, ..., metadata), an in-stream exception
by its `:exception-type` (throttlingException, ...), with the payload, JSON, as data.

A frame that does not check out (a CRC, a length, a header) ends the stream with
UpstreamFailed: nothing after it can be trusted to be framed right.
"""

from __future__ import annotations

import struct

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from gateway.errors import UpstreamFailed
from gateway.translate.sse import SSEEvent

_BROKEN = (
    "The upstream's event stream is malformed ({why}); the answer is incomplete. Retry, and "
    "tell the gateway's operators if it persists."
)


class EventStreamParser:
    """Bytes in, complete events out; keeps only the unfinished frame between calls."""

    __slots__ = ("_broken", "_buffer", "_pending")

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = 0
        """Bytes fed and not yet part of a complete frame."""
        self._broken = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._broken:
            raise UpstreamFailed(_BROKEN.format(why="after an earlier bad frame"))
        self._buffer.add_data(chunk)
        self._pending += len(chunk)
        events: list[SSEEvent] = []
        try:
            for message in self._buffer:
                self._pending -= message.prelude.total_length
                events.append(_event_of(message))
        except (ParserError, KeyError, ValueError, IndexError, struct.error) as exc:
            # KeyError: an unknown header type; struct.error, IndexError: a short header.
            self._broken = True
            raise UpstreamFailed(_BROKEN.format(why=_why(exc))) from None
        return events

    def close(self) -> list[SSEEvent]:
        """Nothing is left to emit (a frame is whole or useless); a stream that ended inside
        a frame was cut short."""
        if self._pending and not self._broken:
            self._broken = True
            raise UpstreamFailed(_BROKEN.format(why="it ended inside a frame"))
        return []


def _event_of(message: EventStreamMessage) -> SSEEvent:
    headers = message.headers
    kind = headers.get(":message-type")
    payload: bytes = message.payload
    if kind == "event":
        name = headers.get(":event-type")
    elif kind == "exception":
        name = headers.get(":exception-type")
    elif kind == "error":  # the framing's own error: a code and a message in headers
        name = headers.get(":error-code") or "error"
        payload = orjson.dumps({"message": str(headers.get(":error-message") or "")})
    else:
        raise ValueError("a frame of an unknown message type")
    if not isinstance(name, str) or not name:
        raise ValueError("a frame without its type header")
    return SSEEvent(name, payload.decode("utf-8", "replace"))


def _why(exc: Exception) -> str:
    if isinstance(exc, ParserError):
        return type(exc).__name__  # ChecksumMismatch, InvalidPayloadLength, ...
    if isinstance(exc, ValueError) and str(exc).startswith("a "):
        return str(exc)  # ours (never the upstream's words)
    return f"a bad frame header ({type(exc).__name__})"
