"""The request as the HTTP/1.1 engine (http1.py) writes it, and the heads it refuses to write.

A head is refused, before anything is sent, when an upstream could read it otherwise than
it was written: a CR, LF or NUL in a header name or value, or a header name or method that
is not an HTTP token. Whatever put the header there (a client, the policy, a credential, an
OAuth token), it cannot add headers or whole requests to a pooled connection that later
serves other callers. The check costs about 0.5 µs a request: start lines and header names
are checked once per distinct value, and the finished head is scanned once, in C.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable

import httpx

__all__ = ["RequestHeads", "UnsafeRequestHead"]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110's token: what a header name and a method are made of."""
_BREAKS = b"\r\n\x00"
_MAX_CACHED = 1024


class UnsafeRequestHead(httpx.LocalProtocolError):
    """A request head the engine refused to write: it would change the message's framing.

    `header` is the (lowercased) name of the header at fault when that name is itself safe to
    show; the message never holds a header's value, which may be a credential.
    """

    def __init__(self, message: str, *, header: str | None, request: httpx.Request) -> None:
        super().__init__(message, request=request)
        self.header = header


class RequestHeads:
    """Writes requests; start lines and checked header names are cached."""

    def __init__(self) -> None:
        self._starts: dict[tuple[bytes, bytes], bytes] = {}
        self._names: set[bytes] = set()
        """Header names already found to be tokens: each distinct name is matched once."""

    def encode(self, request: httpx.Request) -> tuple[bytes, AsyncIterable[bytes] | None]:
        """The request head and body as one buffer, or the head and a body still to stream;
        UnsafeRequestHead for a head that would not be read back as written."""
        method, target = request.method.encode(), request.url.raw_path
        key = (method, target)
        start = self._starts.get(key)
        if start is None:
            start = self._start_line(key, request)
        names = self._names
        raw = request.headers.raw
        parts = [start]
        for name, value in raw:
            if name not in names:
                self._learn_name(name, request)
            parts += (name, b": ", value, b"\r\n")  # cheaper than formatting each line
        parts.append(b"\r\n")
        head = b"".join(parts)
        # Every line (start, headers, the empty one) ends in the one CRLF written here (the
        # start line's was checked when it was cached): any other CR, LF or NUL came inside a
        # name or a value. One C-speed pass over the head instead of a scan per header.
        if len(head) - len(head.translate(None, _BREAKS)) != 2 * (len(raw) + 2):
            raise _unsafe_value(request)
        try:
            content = request.content
        except httpx.RequestNotRead:
            return head, _as_async(request.stream)
        return head + content, None

    def _start_line(self, key: tuple[bytes, bytes], request: httpx.Request) -> bytes:
        """`METHOD target HTTP/1.1`, checked and cached per method and target."""
        method, target = key
        if not _TOKEN.fullmatch(method):
            raise UnsafeRequestHead(
                "the request method is not an HTTP token; nothing was sent",
                header=None,
                request=request,
            )
        # httpx percent-encodes what a URL must not hold; a target is checked all the same.
        if any(byte <= 0x20 or byte == 0x7F for byte in target):
            raise UnsafeRequestHead(
                "the request target holds a space or a control character; nothing was sent",
                header=None,
                request=request,
            )
        if len(self._starts) >= _MAX_CACHED:
            self._starts.clear()
        start = self._starts[key] = b"%s %s HTTP/1.1\r\n" % key
        return start

    def _learn_name(self, name: bytes, request: httpx.Request) -> None:
        if not _TOKEN.fullmatch(name):
            raise UnsafeRequestHead(
                "a request header name is not an HTTP token (letters, digits and "
                "!#$%&'*+-.^_`|~ only); nothing was sent",
                header=None,
                request=request,
            )
        if len(self._names) >= _MAX_CACHED:
            self._names.clear()
        self._names.add(name)


def _unsafe_value(request: httpx.Request) -> UnsafeRequestHead:
    """The error for the first header with a CR, LF or NUL (names are tokens by now)."""
    for name, value in request.headers.raw:
        if any(byte in value for byte in _BREAKS):
            shown = name.decode("ascii").lower()
            return UnsafeRequestHead(
                f"the request header '{shown}' holds a CR, LF or NUL in its value; "
                "nothing was sent",
                header=shown,
                request=request,
            )
    return UnsafeRequestHead(  # pragma: no cover - the head scan found one somewhere
        "a request header holds a CR, LF or NUL; nothing was sent", header=None, request=request
    )


async def _as_async(stream: object) -> AsyncIterator[bytes]:
    if isinstance(stream, AsyncIterable):
        async for chunk in stream:
            yield chunk
    elif isinstance(stream, Iterable):
        for chunk in stream:
            yield chunk
