"""A streamed answer's body chunks written straight onto the client's connection.

The upstream engine hands each piece of a stream to the relay inside its data callback
(ResponseBody.relay); writing the relayed bytes from there, rather than through Sanic's
`response.send`, saves a task wake-up, an await and a signal dispatch per chunk, most of
what a relayed chunk cost. Sanic still writes the head (first) and the end (last); in
between this writes the chunked framing Sanic itself would, and keeps the two things of
Sanic's connection a write must: its write gate `_can_write` (cleared while the client's
buffer is full) and `_time` (the response timeout counts from the last write).
tests/gateway/test_client_writer.py checks that Sanic still has them.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from sanic import Request
from sanic.response import BaseHTTPResponse

__all__ = ["ClientWriter"]


class ClientWriter:
    """Writes body chunks of one chunked HTTP/1.1 response Sanic has started."""

    __slots__ = ("_can_write", "_protocol", "_transport")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._transport = protocol.transport
        self._can_write = protocol._can_write

    @classmethod
    async def start(cls, request: Request, response: BaseHTTPResponse) -> ClientWriter | None:
        """Send the response's head; a writer when its body goes out chunked (else None:
        the caller sends through Sanic)."""
        await response.send(b"")
        http = request.stream
        protocol = getattr(http, "protocol", None)
        if http is None or protocol is None or not hasattr(protocol, "_can_write"):
            return None
        if getattr(http, "response_func", None) != getattr(http, "http1_response_chunked", 0):
            return None  # a HEAD request, or a head Sanic wrote another way
        return cls(protocol)

    def write(self, data: bytes) -> bool:
        """Send one chunk; False when the client cannot take more now (or has gone)."""
        transport = self._transport
        if transport.is_closing():
            return False
        transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        self._protocol._time = monotonic()
        return bool(self._can_write.is_set())

    async def drained(self) -> None:
        """Until the client can take more; ConnectionResetError when it has gone."""
        await self._can_write.wait()
        if self._transport.is_closing():
            raise ConnectionResetError("the client closed its connection")
