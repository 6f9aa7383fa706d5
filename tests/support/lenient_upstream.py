"""A loopback HTTP/1.1 upstream that reads requests as leniently as nginx and h11 do: a bare LF
ends a line as a CRLF does, so a header or a whole request smuggled in by a bare LF shows up
as the separate header or request such an upstream would see.

It keeps connections alive and records every request it parses, byte for byte, with the
connection it came on; a subclass says what each one is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Self

from tests.support.loop_thread import LoopThread

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """One request as the lenient upstream read it."""

    connection: int
    """1 for the first connection accepted, 2 for the next, and so on."""
    head: bytes
    """The request line and header lines, exactly as they came (up to the blank line)."""
    body: bytes

    @property
    def method(self) -> str:
        return self.head.split(b" ", 1)[0].decode("latin-1")

    @property
    def target(self) -> str:
        """As it came: nothing decoded or normalised."""
        return self.head.split(b"\n", 1)[0].split(b" ")[1].decode("latin-1")

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @cached_property
    def headers(self) -> dict[str, str]:
        """Lower-case names; of a repeated header, its first value."""
        return _headers(self.head)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, "application/json", json.dumps(value).encode())


class LenientUpstream:
    """A subclass says what each request gets (`answer`); `seen` holds every request parsed,
    in order."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.connections = 0
        self.port = 0
        self._thread = LoopThread()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def answer(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._server = self._thread.run(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # a pooled keep-alive connection, still open
                writer.close()
            self._thread.run(self._server.wait_closed())
        self._thread.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        self._writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while (head := await _read_head(reader)) is not None:
                request = Request(connection, head, await _read_body(reader, _headers(head)))
                self.seen.append(request)
                response = self.answer(request)
                writer.write(
                    b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (
                        response.status,
                        response.content_type.encode(),
                        len(response.body),
                        response.body,
                    )
                )
                await writer.drain()
        self._writers.discard(writer)
        writer.close()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The request line and headers; None once the peer closed the connection."""
    head = b""
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if head:
                return head
            continue  # blank lines before a request line are skipped, as servers do
        head += line
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")


def _headers(head: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in head.decode("latin-1").split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found.setdefault(name.strip().lower(), value.strip())
    return found


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
        return body
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""
