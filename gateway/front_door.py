"""The connection layer under Sanic: connections per worker, clean heads, unread bodies.

The one module that knows Sanic's HTTP/1.1 internals (its `Http` connection state).

`serve` runs Sanic with `FrontDoorProtocol`. Over `--max-connections`, a new connection is
closed as soon as it is accepted, before anything is read from it: answering it (even a 503)
would mean waiting for its request head, and a flood of connections that never send one would
then hold exactly what the bound is there to protect. SDK clients retry a refused connection
with backoff, as they do a 503.

Sanic splits a request head on CRLF only, so a bare CR or LF (or a NUL) survives inside a
header value, where it could later break the framing of a request sent upstream. Such a head
is answered 400 before any handler runs, as is one where a proxy in front could see the
request end elsewhere than Sanic does (a malformed header line, a Content-Length in other
than ASCII digits).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sanic import Request
from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol

from gateway.errors import BadRequest, GatewayError


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


def body_has_arrived(request: Request) -> bool:
    """Whether a body of declared length (not chunked) is all in the connection's buffer.

    Most are: a client sends its body right behind its head. Reading one then cannot block.
    """
    http = request.stream
    return isinstance(http, Http) and len(http.recv_buffer) >= (http.request_bytes_left or 0)


class CheckedHeadHttp(Http):
    """Sanic's HTTP/1.1 connection handler, refusing heads with control characters."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        if b"\r\n\r\n" in self.recv_buffer:  # the usual case: no deadline to arm
            await super().http1_request_header()  # type: ignore[no-untyped-call]
        else:
            # Sanic's request timeout restarts with every byte: a head trickled a byte at a
            # time held its connection, one of --max-connections, for days. The head gets
            # the request timeout from its first byte, as a body does (request_body.py).
            try:
                async with asyncio.timeout(self.protocol.request_timeout):
                    await super().http1_request_header()  # type: ignore[no-untyped-call]
            except TimeoutError:
                raise HeadTimeout() from None
        request = self.request
        if not head_is_clean(request.head, len(request.headers)):
            # Raised while the head is being read: Sanic answers, then closes the connection.
            close_after_answer(request)
            raise ControlCharacterInHead()
        problem = head_problem(request.head, request.headers.get("content-length"))
        if problem is not None:
            close_after_answer(request)
            raise problem


class FrontDoorProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with a per-worker connection bound and checked heads."""

    __slots__ = ()
    HTTP_CLASS = CheckedHeadHttp

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.app.ctx.state.settings.max_connections:
            transport.close()  # refused before anything is read or set up
            return
        super().connection_made(transport)  # type: ignore[no-untyped-call]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn_info is None:  # refused in connection_made: nothing to tear down
            return
        super().connection_lost(exc)  # type: ignore[no-untyped-call]
