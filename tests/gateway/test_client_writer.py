"""ClientWriter writes a stream's chunks past Sanic's `response.send`: what it relies on in
Sanic's connection must still be there (a Sanic upgrade that renames them fails here, not in
a customer's stream). That it writes correct bytes is the streaming tests' part."""

from __future__ import annotations

import asyncio

from sanic.http.http1 import Http
from sanic.server.protocols.http_protocol import HttpProtocol

from gateway.request.client_writer import ClientWriter


def test_sanic_still_has_the_parts_the_client_writer_uses() -> None:
    for name in ("_can_write", "_time", "transport"):
        assert hasattr(HttpProtocol, name), name
    for name in ("protocol", "response_func", "http1_response_chunked"):
        assert hasattr(Http, name), name


def test_a_chunk_is_framed_as_sanic_frames_it() -> None:
    sanic_sent: list[bytes] = []
    written: list[bytes] = []

    class SanicSide:
        async def _send(self, data: bytes) -> None:
            sanic_sent.append(data)

    class Transport:
        def is_closing(self) -> bool:
            return False

        def write(self, data: bytes) -> None:
            written.append(data)

    class Connection:
        transport = Transport()
        _can_write = asyncio.Event()
        _time = 0.0

    chunk = b'data: {"x": 1}\n\n' * 20
    asyncio.run(Http.http1_response_chunked(SanicSide(), chunk, False))  # type: ignore[arg-type]
    connection = Connection()
    assert ClientWriter(connection).write(chunk) is False  # the write gate is closed
    assert written == sanic_sent
    assert connection._time > 0  # Sanic's response timeout counts from this write
