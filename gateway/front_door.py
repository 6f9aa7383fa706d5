"""The connection layer under Sanic: connections per worker, clean heads, unread bodies.

The one module that knows Sanic's HTTP/1.1 internals (its `Http` connection state).

`serve` runs Sanic with `FrontDoorProtocol`. Over `--max-connections`, a new connection is
closed as soon as it is accepted, before anything is read from it: answering it (even a 503)
would mean waiting for its request head, and a flood of connections that never send one would
then hold exactly what the bound is there to protect. SDK clients retry a refused connection
with backoff, as they do a 503. A connection's first request head is due within the request
timeout (`--body-timeout`) of its accept, so connections that send nothing give their places
back that soon, not after the keep-alive timeout.

Sanic splits a request head on CRLF only, so a bare CR or LF (or a NUL) survives inside a
header value, where it could later break the framing of a request sent upstream. Such a head
is answered 400 before any handler runs, as is one where a proxy in front could see the
request end elsewhere than Sanic does (a malformed header line, a Content-Length in other
than ASCII digits).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from sanic import Request
from sanic.exceptions import PayloadTooLarge
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from gateway.errors import BadRequest, GatewayError

log = logging.getLogger("modelgate.connections")
REFUSAL_LOG_INTERVAL_S = 10.0


class ControlCharacterInHead(BadRequest):
    code = "invalid_header"

    def __init__(self) -> None:
        super().__init__(
            "A request header contains a bare CR or LF, or a NUL byte. End each header line "
            "with CRLF and send no control characters other than tab in header values."
        )


class HeadTimeout(GatewayError):
    status = 408
    code = "request_timeout"
    kind = "timeout"

    def __init__(self) -> None:
        super().__init__(
            "The request head did not arrive in time. Send the whole head at once, promptly."
        )


class MalformedHead(BadRequest):
    code = "invalid_header"


class HeadTooLarge(GatewayError):
    status = 431
    code = "request_header_fields_too_large"
    kind = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request headers are larger than this gateway accepts ({limit} bytes in all, "
            "with the request line). Send fewer or shorter headers."
        )


_NOT_A_FIELD_LINE = re.compile(rb"\r\n(?![!#$%&'*+.^_`|~0-9A-Za-z-]+:)")
"""A header line that is not `name:` with a token for its name: a space before the colon,
a folded continuation line. A proxy in front may read such a line as Content-Length or
Transfer-Encoding where Sanic reads another header (RFC 9112 5.1: reject with 400)."""


def head_problem(head: bytes, content_length: str | None) -> MalformedHead | None:
    """Where a head could end its request elsewhere for a proxy in front than for Sanic."""
    if _NOT_A_FIELD_LINE.search(head):
        return MalformedHead(
            "A request header line is not 'Name: value' (a space before the colon, or a "
            "folded line). Send each header on one line, its name right before the colon."
        )
    # Sanic reads the length with int(), which takes any Unicode digits ('٢' is 2).
    length = (content_length or "0").rstrip(" \t")
    if not (length.isascii() and length.isdigit()):
        return MalformedHead("The Content-Length header must be a number in ASCII digits.")
    return None


def head_is_clean(head: bytes, header_count: int) -> bool:
    """Whether the only CR and LF bytes in a head are the CRLFs between its lines, and no NUL.

    Sanic cut the head into the request line and `header_count` header lines at CRLF, so a
    clean head holds exactly `header_count` of each byte (two counts and a find: < 1 µs).
    """
    return (
        head.count(b"\n") == header_count
        and head.count(b"\r") == header_count
        and head.find(b"\x00") < 0
    )


def close_after_answer(request: Request) -> None:
    """Answer, then close the connection, without reading what is left of the request body.

    Sanic would otherwise read (and discard) the rest of the body after the answer, to keep the
    connection: that is the work a refused request must not cost. The close is announced in
    the answer's `Connection` header.
    """
    http = request.stream
    if isinstance(http, Http) and http.request_body:
        http.keep_alive = False
        http.request_body = None
        http.expecting_continue = False  # Sanic would invite the body with a 100 first


def limit_body(request: Request, max_bytes: int) -> None:
    """Sanic lifts the body size limit for streaming routes: set it again, checked as read."""
    http = request.stream
    if isinstance(http, Http):
        http.request_max_size = max_bytes


def take_arrived_body(request: Request) -> bytes | None:
    """A body of declared length (not chunked) taken whole from the connection's buffer, or
    None when it has not all arrived (or Sanic must act first: a 100-continue, a size limit).

    Most bodies have arrived: a client sends its body right behind its head. Taking it as
    Sanic's `Http.read` would, in one slice, saves an async iteration per request.
    """
    http = request.stream
    if not isinstance(http, Http):
        return None
    framing: object = http.request_body  # True for Content-Length, "chunked", None when read
    if (
        framing is not True
        or http.expecting_continue
        # Over the limit, Sanic's read raises PayloadTooLarge (None: not expected; read so)
        or (http.request_bytes or 0) > (http.request_max_size or 0)
    ):
        return None
    size = http.request_bytes_left or 0
    buffer = http.recv_buffer
    if len(buffer) < size:
        return None
    body = bytes(buffer[:size])
    del buffer[:size]
    http.request_bytes_left = 0
    http.request_body = None  # read to its end, as Sanic marks it
    return body


class CheckedHeadHttp(Http):
    """Sanic's HTTP/1.1 connection handler, refusing heads with control characters."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        # Between keep-alive requests the buffer is empty: wait for the next request's first
        # bytes as Sanic would (its keep-alive timeout governs this idle wait), so that the
        # usual head, arriving whole, costs no deadline (arming one is ~4 µs a request).
        while not self.recv_buffer:
            await self._receive_more()
        try:
            if b"\r\n\r\n" in self.recv_buffer:  # the usual case: no deadline to arm
                await super().http1_request_header()  # type: ignore[no-untyped-call]
            else:
                # Sanic's request timeout restarts with every byte: a head trickled a byte at
                # a time held its connection, one of --max-connections, for days. The head
                # gets the request timeout from its first byte, as a body does
                # (request_body.py); a connection's first head, from its accept (below).
                try:
                    async with asyncio.timeout(self.protocol.request_timeout):
                        await super().http1_request_header()  # type: ignore[no-untyped-call]
                except TimeoutError:
                    raise HeadTimeout() from None
        except PayloadTooLarge:  # Sanic's refusal of a head over its size limit
            raise HeadTooLarge(self.HEADER_MAX_SIZE) from None
        if isinstance(self.protocol, FrontDoorProtocol):
            self.protocol.head_arrived()
        request = self.request
        if not head_is_clean(request.head, len(request.headers)):
            # Raised while the head is being read: Sanic answers, then closes the connection.
            close_after_answer(request)
            raise ControlCharacterInHead()
        problem = head_problem(request.head, request.headers.get("content-length"))
        if problem is not None:
            close_after_answer(request)
            raise problem


class _Refusals:
    """Refused connections, counted (`modelgate_refused_connections_total`) and said in a
    warning at most every REFUSAL_LOG_INTERVAL_S: a flood must not become a flood of lines."""

    def __init__(self) -> None:
        self.unlogged = 0
        self.logged_at = 0.0

    def note(self, limit: int, metrics: Any) -> None:
        metrics.refused_connections.inc()
        self.unlogged += 1
        now = time.monotonic()
        if now - self.logged_at >= REFUSAL_LOG_INTERVAL_S:
            log.warning(
                "refused %d connection(s): this worker holds --max-connections (%d)",
                self.unlogged,
                limit,
            )
            self.unlogged, self.logged_at = 0, now


_refusals = _Refusals()


class FrontDoorProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with a per-worker connection bound and checked heads."""

    __slots__ = ("_first_head_due",)
    HTTP_CLASS = CheckedHeadHttp

    def connection_made(self, transport: Any) -> None:
        self._first_head_due: asyncio.TimerHandle | None = None
        state = self.app.ctx.state
        if len(self.connections) >= state.settings.max_connections:
            transport.close()  # refused before anything is read or set up
            _refusals.note(state.settings.max_connections, state.recorder.metrics)
            return
        super().connection_made(transport)  # type: ignore[no-untyped-call]
        # Sanic gives a new connection its keep-alive timeout to start a request: one that
        # never sends a byte held a place of --max-connections for that long. Its first
        # head is due within the request timeout of the accept; later idling between
        # requests keeps the keep-alive timeout.
        self._first_head_due = self.loop.call_later(self.request_timeout, self._head_overdue)

    def head_arrived(self) -> None:
        if self._first_head_due is not None:
            self._first_head_due.cancel()
            self._first_head_due = None

    def _head_overdue(self) -> None:
        """Ends the connection as Sanic's own timeouts do: a head that has begun to arrive
        is answered 408; a connection that sent nothing is closed unanswered."""
        self._first_head_due = None
        http: Http | None = getattr(self, "_http", None)
        task: asyncio.Task[None] | None = self._task
        if task is None:
            return
        if http is not None and http.stage is Stage.REQUEST:
            http.exception = HeadTimeout()
        task.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn_info is None:  # refused in connection_made: nothing to tear down
            return
        self.head_arrived()  # no longer due
        super().connection_lost(exc)  # type: ignore[no-untyped-call]
