"""Incremental Server-Sent Events parsing and encoding (on the streaming hot path).

``SSEParser.feed`` takes raw bytes as they arrive and returns every event completed by
them, at once: nothing waits for a later chunk once its blank line has been seen.
Lines may end in LF, CRLF or CR; ``data`` lines are joined with LF; comments
(``:``-lines), ``id`` and ``retry`` are skipped; a block without data is not an event.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.errors import UpstreamFailed

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The longest event relayed: an upstream must not make a worker hold an endless one."""


def event_too_long() -> UpstreamFailed:
    return UpstreamFailed(
        f"The upstream sent a stream event longer than {MAX_EVENT_BYTES >> 20} MiB, "
        "which the gateway does not relay; the answer is incomplete. Retry, and "
        "tell the gateway's operators if it persists."
    )


class SSEEvent(NamedTuple):
    event: str
    """The ``event:`` field, or "" when the block had none."""
    data: str


class SSEParser:
    """Bytes in, complete events out; keeps only the unfinished tail between calls."""

    __slots__ = ("_buf", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf:
            # The previous chunk ended in CR: an LF here is the second half of that CRLF.
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            if end > start:
                event = _parse_block(buf[start:end])
                if event is not None:
                    events.append(event)
            start = end + 2
        self._buf = buf[start:]
        if len(self._buf) > MAX_EVENT_BYTES:
            raise event_too_long()
        return events

    def close(self) -> list[SSEEvent]:
        """The last event when the stream ended without its blank line."""
        tail, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not tail:
            return []
        event = _parse_block(tail.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    # Fast path: the common single ``data:`` line.
    if block.startswith(b"data:") and b"\n" not in block:
        value = block[5:]
        if value.startswith(b" "):
            value = value[1:]
        return SSEEvent("", value.decode("utf-8", "replace"))
    name = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        key, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if key == b"data":
            data.append(value)
        elif key == b"event":
            name = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(name, b"\n".join(data).decode("utf-8", "replace"))


def encode(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE event; ``data`` must be a single line (compact JSON is)."""
    payload = data.encode() if isinstance(data, str) else data
    if event:
        return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
    return b"data: " + payload + b"\n\n"
