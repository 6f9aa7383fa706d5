"""One upstream HTTP/1.1 connection (an asyncio protocol fed to httptools' parser) and the
body stream of the response it is reading. The pool that owns connections is http1.py."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, cast

import httptools
import httpx

__all__ = ["Connection", "Origin", "Pool", "ResponseBody", "Sink"]

HIGH_WATER = 256 * 1024
"""Buffered response bytes at which reading pauses until the reader takes them."""

Origin = tuple[bytes, str, int]
"""Scheme, host and port: connections are pooled per origin."""


Sink = Callable[[bytes], bool]
"""Takes a body piece inside the connection's data_received; False: hold the body (stop
reading) until the task relaying it has caught up (ResponseBody.relay)."""


class Pool(Protocol):
    """What a connection and its response body need from the pool that owns them."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def release(self, conn: Connection) -> None:
        """The response was read to its end: keep the connection if it can be reused."""

    def opened(self, conn: Connection) -> None:
        """The connection is made: it holds a slot until `forget`."""

    def forget(self, conn: Connection) -> None:
        """The connection is lost: free its slot."""


class Connection(asyncio.Protocol):
    """One upstream connection; parses one response at a time."""

    def __init__(self, engine: Pool, origin: Origin) -> None:
        self.engine, self.origin = engine, origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.busy = False
        self.reused = False
        self.idle_since = 0.0
        self.reading_paused = False
        self.drain: asyncio.Future[None] | None = None
        self._tunnel_reply: bytearray | None = None
        self._tunnel_waiter: asyncio.Future[int] | None = None
        self.sink: Sink | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.informational = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.pieces = 0
        """Body pieces parsed: a sink's relay waits without a wake-up per piece, so its read
        timeout looks here for what came meanwhile."""
        self.held = False
        self.complete = False
        self.received = False
        self.has_length = False
        self.keep_alive = False
        self.error: httpx.TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.engine.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.forget(self)
        tunnel = self._tunnel_waiter
        if tunnel is not None and not tunnel.done():
            tunnel.set_exception(httpx.ProxyError("the upstream proxy closed the connection"))
        if exc is None and self.headers_done and not self.complete and not self.has_length:
            self.complete = True  # a body delimited by the connection's (clean) end
        elif not self.complete and self.error is None:
            self.error = (
                httpx.RemoteProtocolError("the upstream broke off its response")
                if self.received
                else httpx.RemoteProtocolError(
                    "the upstream closed the connection before answering"
                )
            )
        self._wake()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def eof_received(self) -> bool:
        return False  # close; connection_lost tells a complete body from a broken one

    def data_received(self, data: bytes) -> None:
        if self._tunnel_reply is not None:
            self._tunnel_data(data)
            return
        if not self.busy:  # nothing was asked: e.g. a 408 an upstream sends before closing
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.complete:  # _Surplus: the answer is whole; the connection is done
                self.keep_alive = False
                self.close()
                return
            self.error = httpx.RemoteProtocolError(f"malformed upstream response: {exc}")
            self.close()
            self._wake()

    def pause_writing(self) -> None:
        self.drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # ---------------------------------------------------------------- a proxy tunnel
    async def open_tunnel(self, connect_request: bytes) -> None:
        """Ask the proxy this connection goes to for a tunnel; ProxyError unless it agrees."""
        assert self.transport is not None
        self._tunnel_reply = bytearray()
        waiter = self._tunnel_waiter = self.engine.loop.create_future()
        self.transport.write(connect_request)
        try:
            status = await waiter
        finally:
            self._tunnel_reply = self._tunnel_waiter = None
        if not 200 <= status < 300:
            raise httpx.ProxyError(f"the upstream proxy refused the tunnel ({status})")

    def _tunnel_data(self, data: bytes) -> None:
        reply, waiter = self._tunnel_reply, self._tunnel_waiter
        if reply is None or waiter is None or waiter.done():
            return
        reply += data
        if b"\r\n\r\n" not in reply:
            if len(reply) > 16384:
                waiter.set_exception(httpx.ProxyError("the upstream proxy sent no valid reply"))
            return
        words = bytes(reply.split(b"\r\n", 1)[0]).split()  # HTTP/1.1 200 Connection established
        if len(words) >= 2 and words[0].startswith(b"HTTP/") and words[1].isdigit():
            waiter.set_result(int(words[1]))
        else:
            waiter.set_exception(httpx.ProxyError("the upstream proxy sent no valid reply"))

    # ---------------------------------------------------------------- httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:
            raise _Surplus  # bytes after the answer that was asked for: unasked, untrusted

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.has_length = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.informational = True  # 100 Continue and the like: the answer comes after
            self.headers = []
            self.has_length = False
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.pieces += 1
        sink = self.sink
        if sink is not None and not self.held and not self.chunks:
            if not sink(body):
                self.hold()
                self._wake()
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered >= HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.complete = True
        self._wake()

    # ---------------------------------------------------------------- the engine's side
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def start(self, data: bytes) -> None:
        self._reset()
        self.busy = True
        assert self.transport is not None
        self.transport.write(data)

    async def wait(self, read_timeout: float | None) -> None:
        """Until the parser has news, or no body piece came for `read_timeout` seconds."""
        if self.error is not None:
            raise self.error
        loop = self.engine.loop
        waiter = self.waiter = loop.create_future()
        timer = None
        if read_timeout is not None:
            timer = loop.call_later(read_timeout, self._expire, waiter, read_timeout, self.pieces)
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def _expire(self, waiter: asyncio.Future[None], read_timeout: float, pieces: int) -> None:
        if waiter.done():
            return
        if self.pieces != pieces:  # a sink took pieces meanwhile: the quiet starts again
            timer = self.engine.loop.call_later(
                read_timeout, self._expire, waiter, read_timeout, self.pieces
            )
            waiter.add_done_callback(lambda _: timer.cancel())
            return
        waiter.set_exception(httpx.ReadTimeout("timed out reading from the upstream"))

    def hold(self) -> None:
        """Stop reading: pieces parsed from what was already read are buffered meanwhile."""
        self.held = True
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def release(self) -> None:
        self.held = False
        if self.reading_paused and not self.chunks and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def take(self) -> bytes:
        """Everything buffered, in one piece."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True


class _Surplus(Exception):
    """A second message began on a connection whose answer is complete."""


class ResponseBody(httpx.AsyncByteStream):
    """A response body as it arrives; closing it before its end closes the connection."""

    __slots__ = ("_conn", "_engine", "_read_timeout", "_request")

    def __init__(
        self, engine: Pool, conn: Connection, request: httpx.Request, read: float | None
    ) -> None:
        self._engine, self._request, self._read_timeout = engine, request, read
        self._conn: Connection | None = conn

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        while not conn.chunks:
            if conn.complete:
                self._finish()
                raise StopAsyncIteration
            await self._wait(conn)
        return conn.take()

    async def relay(self, sink: Sink, catch_up: Callable[[], Awaitable[None]]) -> None:
        """The body to its end, each piece handed to `sink` as soon as it is parsed, inside
        the connection's data_received: no task wakes up per piece. When `sink` returns False
        reading stops, and this task awaits `catch_up()` (the client drained its buffer, an
        end waited for its settlement, an error is raised) before going on."""
        conn = self._conn
        if conn is None:
            return
        conn.sink = sink
        try:
            while True:
                if conn.held:
                    await catch_up()
                    conn.release()
                elif conn.chunks:  # parsed before the sink was set, or while it was held
                    if not sink(conn.take()):
                        conn.hold()
                elif conn.complete:
                    break
                else:
                    await self._wait(conn)
        finally:
            conn.sink = None
        self._finish()

    async def read_all(self, deadline: float | None) -> bytes:
        """The whole body by `deadline` (event-loop time): no wait, no timer when it came
        with the headers."""
        conn = self._conn
        if conn is None:
            return b""
        parts: list[bytes] = []
        if not conn.complete:
            async with asyncio.timeout_at(deadline):
                while not conn.complete:
                    if conn.reading_paused:  # taking what is buffered resumes reading
                        parts.append(conn.take())
                    await self._wait(conn)
        if conn.chunks:
            parts.append(conn.take())
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._finish()
        return body

    async def _wait(self, conn: Connection) -> None:
        try:
            await conn.wait(self._read_timeout)
        except httpx.TransportError as exc:
            exc.request = self._request
            self._abandon()
            raise
        except BaseException:
            self._abandon()
            raise

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._engine.release(conn)

    def _abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        conn = self._conn
        if conn is not None and conn.complete and not conn.chunks:
            self._finish()
        else:
            self._abandon()
