"""The upstream HTTP/1.1 engine: asyncio protocols, httptools' parser and a keep-alive pool.

An httpx transport, so executors keep httpx's API, but with nothing a gateway does not need:
no proxies, cookies, redirects, HTTP/2 or content decoding (upstreams are asked for identity
bodies). Per request it writes one buffer, parses in C and arms one timer per read it waits
for; aiohttp's general-purpose client cost twice the CPU for the same work
(bench/transport_micro.py).

What the pipeline relies on:
- body chunks are yielded as they arrive (all that is buffered at once), never held back;
- a response read to the end returns its connection to the pool; `aclose()` before the end,
  or a cancelled request, closes the connection, so an abandoned upstream stream stops;
- `request.extensions["timeout"]`: `connect` bounds connecting, `pool` waiting for a free
  connection slot (when None, the transport's own `pool_timeout`), `read` every wait for
  response bytes (the headers, then each chunk);
- failures raise httpx's exceptions (ConnectError, ConnectTimeout, PoolTimeout, ReadTimeout,
  ReadError, RemoteProtocolError, UnsupportedProtocol), never with the URL in the message:
  a query string may carry a credential;
- a head that an upstream could read otherwise than it was written (a CR, LF or NUL in a
  header, a name that is not a token) is refused before anything is sent: UnsafeRequestHead,
  an httpx.LocalProtocolError (http1_head.py).
A request whose reused keep-alive connection turns out closed by the upstream before any
response byte is sent once more on a new connection (the upstream never saw it).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import AsyncIterable, Mapping

import httpx

from gateway.upstream.http1_connection import Connection, Origin, ResponseBody
from gateway.upstream.http1_head import RequestHeads, UnsafeRequestHead
from gateway.upstream.proxy import UpstreamProxy

__all__ = ["Http1Transport", "ResponseBody", "UnsafeRequestHead"]

_HTTP_VERSION = {"http_version": b"HTTP/1.1"}
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_POOL_LOG_EVERY_S = 10.0

log = logging.getLogger("modelgate.upstream")


class Http1Transport(httpx.AsyncBaseTransport):
    """An httpx transport speaking HTTP/1.1 over a pool of keep-alive connections.

    `max_connections` bounds open connections in all; a request finding them all busy waits
    for one at most its `pool` timeout, or `pool_timeout` when it sets none (None: no bound),
    then gets httpx.PoolTimeout. `keepalive_expiry` is how long an idle one is kept.
    `ssl_context` verifies TLS upstreams (default: httpx's trust store). With a `proxy`,
    connections to hosts it applies to are CONNECT tunnels through it (proxy.py).
    """

    def __init__(
        self,
        *,
        max_connections: int = 1000,
        keepalive_expiry: float = 30,
        ssl_context: ssl.SSLContext | None = None,
        proxy: UpstreamProxy | None = None,
        pool_timeout: float | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._pool_timeouts = 0
        """Requests that gave up waiting for a connection slot since the last warning."""
        self._pool_warned_at = -_POOL_LOG_EVERY_S
        self._proxy = proxy
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}
        self._open = 0
        """Connections made and not yet lost (their protocol callbacks count them)."""
        self._connecting = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._heads = RequestHeads()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._swept_at = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        port = url.port or _DEFAULT_PORTS.get(scheme)
        if port is None or not url.host:
            raise httpx.UnsupportedProtocol(
                "the upstream URL is not a valid http(s) URL", request=request
            )
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        read = timeouts.get("read")
        data, body = self._heads.encode(request)  # before a connection is even taken
        origin = (scheme, url.host, port)
        for _ in range(2):
            conn = await self._acquire(origin, request, timeouts)
            try:
                conn.start(data)
                if body is not None:
                    await self._send_body(conn, body, request)
                while not conn.headers_done:
                    await conn.wait(read)
            except httpx.TransportError as exc:
                conn.close()
                if (
                    conn.reused
                    and body is None  # a streamed body is spent: it cannot go out again
                    and not conn.received
                    and not isinstance(exc, httpx.TimeoutException)
                ):
                    continue  # the upstream had closed this idle connection: a fresh one
                exc.request = request
                raise
            except BaseException:
                conn.close()  # cancelled: the upstream must stop working on it
                raise
            stream = ResponseBody(self, conn, request, read)
            if request.method == "HEAD":  # no body follows; the parser would wait for one
                conn.complete = True
                conn.has_length = False
                conn.close()
            return httpx.Response(
                conn.status, headers=conn.headers, stream=stream, extensions=_HTTP_VERSION
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_body(
        self, conn: Connection, body: AsyncIterable[bytes], request: httpx.Request
    ) -> None:
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        assert conn.transport is not None
        async for part in body:
            if conn.closed:
                break
            if part:
                conn.transport.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if conn.drain is not None:
                await conn.drain
        if chunked and not conn.closed:
            conn.transport.write(b"0\r\n\r\n")

    async def _acquire(
        self, origin: Origin, request: httpx.Request, timeouts: Mapping[str, float | None]
    ) -> Connection:
        """An idle connection to `origin`, or a new one once a connection slot is free."""
        if self._closed:
            raise RuntimeError("the upstream transport is closed")
        deadline: float | None = None
        while True:
            idle = self._idle.get(origin)
            if idle:
                stale_before = self.loop.time() - self._keepalive_expiry
                while idle:
                    conn = idle.pop()  # the most recently used: the least likely to be stale
                    if not conn.closed and conn.idle_since >= stale_before:
                        conn.reused = True
                        return conn
                    conn.close()
            if self._open + self._connecting < self._max_connections:
                return await self._connect(origin, request, timeouts.get("connect"))
            if deadline is None:
                pool = timeouts.get("pool")
                if pool is None:
                    pool = self._pool_timeout
                deadline = self.loop.time() + pool if pool is not None else float("inf")
            await self._wait_for_slot(deadline, request)

    async def _wait_for_slot(self, deadline: float, request: httpx.Request) -> None:
        """Until a connection is released or closed; an idle one to elsewhere is closed first."""
        for conns in self._idle.values():
            if conns:
                conns.pop(0).close()  # its connection_lost frees the slot
                break
        waiter = self.loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout_at(None if deadline == float("inf") else deadline):
                await waiter
        except BaseException as exc:  # timed out or cancelled
            if waiter.done() and not waiter.cancelled():
                self._wake_slot_waiter()  # woken but leaving: the next waiter gets the slot
            elif waiter in self._slot_waiters:
                self._slot_waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                self._warn_pool_full()
                raise httpx.PoolTimeout(
                    "timed out waiting for a free upstream connection", request=request
                ) from None
            raise

    def _warn_pool_full(self) -> None:
        """A log line for the operators, at most one per _POOL_LOG_EVERY_S: at the cap,
        refusals come by the thousand."""
        self._pool_timeouts += 1
        now = self.loop.time()
        if now - self._pool_warned_at < _POOL_LOG_EVERY_S:
            return
        log.warning(
            "upstream connection cap reached: requests gave up waiting for a free connection "
            "(raise --upstream-max-connections if the upstreams and open files allow)",
            extra={
                "max_connections": self._max_connections,
                "open": self._open,
                "waiting": len(self._slot_waiters),
                "refused": self._pool_timeouts,
            },
        )
        self._pool_timeouts = 0
        self._pool_warned_at = now

    async def _connect(
        self, origin: Origin, request: httpx.Request, connect_timeout: float | None
    ) -> Connection:
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        server_hostname = None
        if scheme == b"https":
            tls = self._ssl_context = self._ssl_context or httpx.create_ssl_context()
            sni = request.extensions.get("sni_hostname")
            server_hostname = sni if isinstance(sni, str) else host
        conn: Connection | None = None
        proxy = self._proxy if self._proxy and self._proxy.applies_to(host) else None
        self._connecting += 1
        try:
            async with asyncio.timeout(connect_timeout):
                if proxy is None:
                    _, conn = await self.loop.create_connection(
                        lambda: Connection(self, origin),
                        host,
                        port,
                        ssl=tls,
                        server_hostname=server_hostname,
                    )
                else:
                    conn = await self._tunnel(proxy, origin, tls, server_hostname)
        except httpx.ProxyError as exc:
            exc.request = request
            raise
        except TimeoutError:
            raise httpx.ConnectTimeout(
                "timed out connecting to the upstream", request=request
            ) from None
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None)
            raise httpx.ConnectError(
                f"cannot connect to {host}:{port}: {reason or type(exc).__name__}",
                request=request,
            ) from None
        finally:
            self._connecting -= 1
            if conn is None:
                self._wake_slot_waiter()  # the attempt failed: its slot is free again
        return conn

    async def _tunnel(
        self,
        proxy: UpstreamProxy,
        origin: Origin,
        tls: ssl.SSLContext | None,
        server_hostname: str | None,
    ) -> Connection:
        """A connection to `origin` through a CONNECT tunnel, TLS inside it when https."""
        _, conn = await self.loop.create_connection(
            lambda: Connection(self, origin), proxy.host, proxy.port
        )
        try:
            await conn.open_tunnel(proxy.connect_request(origin[1], origin[2]))
            if tls is not None:
                assert conn.transport is not None
                inner = await self.loop.start_tls(
                    conn.transport, conn, tls, server_hostname=server_hostname
                )
                if inner is None:
                    raise httpx.ConnectError("TLS could not start inside the proxy tunnel")
                conn.transport = inner
        except BaseException:
            conn.close()
            raise
        return conn

    def release(self, conn: Connection) -> None:
        """A response read to its end: keep its connection for the next request if it can be."""
        if conn.closed or self._closed or not conn.keep_alive:
            conn.close()
            return
        conn.busy = False
        now = conn.idle_since = self.loop.time()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._wake_slot_waiter()
        if now - self._swept_at > self._keepalive_expiry:
            self._close_expired(now)

    def _close_expired(self, now: float) -> None:
        """Close idle connections past keepalive_expiry to any origin (an upstream no longer
        called, e.g. after a policy change, would otherwise hold its sockets until it hangs
        up itself)."""
        self._swept_at = now
        stale_before = now - self._keepalive_expiry
        for conns in self._idle.values():
            while conns and conns[0].idle_since < stale_before:  # oldest first
                conns.pop(0).close()

    def opened(self, conn: Connection) -> None:
        """A connection was made (connection_made): it holds a slot until it is lost."""
        self._open += 1

    def forget(self, conn: Connection) -> None:
        """A connection ended (connection_lost): its slot is free."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
        self._open -= 1
        self._wake_slot_waiter()

    def _wake_slot_waiter(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' connection_lost run
