"""The HTTP/1.1 engine's messages on asyncio's loop and uvloop: framing, informational answers,
malformed heads, HEAD, repeated headers, request bodies and flow control.

The wire comes from tests/upstream/raw_server, byte by byte; connections are in test_http1.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.upstream.transport import read_body
from tests.upstream.raw_server import Exchange, Upstream, response_head

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

READ_MODES = ["aiter_raw", "aread", "read_body"]


async def fetch(client: httpx.AsyncClient, url: str, mode: str, deadline_s: float = 2) -> bytes:
    """The body of GET `url`, read the way `mode` names."""
    response = await client.send(client.build_request("GET", url), stream=True)
    try:
        if mode == "aiter_raw":
            return b"".join([chunk async for chunk in response.aiter_raw()])
        if mode == "aread":
            return await response.aread()
        return await read_body(response, asyncio.get_running_loop().time() + deadline_s)
    finally:
        await response.aclose()


@pytest.mark.parametrize("mode", READ_MODES)
async def test_a_body_delimited_by_the_connections_end_is_read_whole(
    upstream: Upstream, client: httpx.AsyncClient, mode: str
) -> None:
    async def until_close(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for part in (b"no ", b"length, ", b"no chunks"):
            await ex.send(part)
            await asyncio.sleep(0.01)
        ex.writer.close()

    upstream.routes["/eof"] = until_close
    assert await fetch(client, upstream.url("/eof"), mode) == b"no length, no chunks"
    assert (await client.get(upstream.url("/json"))).status_code == 200
    assert upstream.accepted == 2


@pytest.mark.parametrize("mode", READ_MODES)
@pytest.mark.parametrize(
    ("head", "part"),
    [(response_head(length=100), b"parti"), (response_head(), b"5\r\nparti\r\n")],
    ids=["content-length", "chunked"],
)
async def test_a_body_cut_short_by_a_reset_raises(
    upstream: Upstream, client: httpx.AsyncClient, head: bytes, part: bytes, mode: str
) -> None:
    async def cut(ex: Exchange) -> None:
        await ex.send(head + part)
        await asyncio.sleep(0.05)
        ex.reset()

    upstream.routes["/cut"] = cut
    with pytest.raises(httpx.RemoteProtocolError):
        await fetch(client, upstream.url("/cut"), mode)


async def test_the_bytes_before_a_cut_arrive_first(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def cut(ex: Exchange) -> None:
        await ex.send(response_head(length=100) + b"partial")
        await asyncio.sleep(0.05)
        ex.writer.close()

    upstream.routes["/cut"] = cut
    response = await client.send(client.build_request("GET", upstream.url("/cut")), stream=True)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        async for chunk in response.aiter_raw():
            received.append(chunk)
    assert received == [b"partial"]
    await response.aclose()


async def test_a_body_delimited_by_the_close_and_cut_by_a_reset_raises(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    may_reset = asyncio.Event()

    async def reset_midway(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 200 OK\r\n\r\npartial")
        await may_reset.wait()
        ex.reset()  # not the clean end (FIN) that would end such a body

    upstream.routes["/cut"] = reset_midway
    response = await client.send(client.build_request("GET", upstream.url("/cut")), stream=True)
    chunks = response.aiter_raw()
    assert await anext(chunks) == b"partial"
    may_reset.set()
    with pytest.raises(httpx.RemoteProtocolError):
        async with asyncio.timeout(2):
            async for _ in chunks:
                pass
    await response.aclose()


async def test_informational_answers_before_the_real_one_are_skipped(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def continues(ex: Exchange) -> None:
        await ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0.01)
        await ex.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        await ex.send(response_head("201 Created", "X-Real: yes", length=4) + b"done")

    upstream.routes["/continue"] = continues
    response = await client.post(
        upstream.url("/continue"), content=b"{}", headers={"expect": "100-continue"}
    )
    assert response.status_code == 201
    assert response.content == b"done"
    assert response.headers["x-real"] == "yes"
    assert "link" not in response.headers
    # The parser is ready for the next answer on the same connection.
    assert (await client.get(upstream.url("/json"))).status_code == 200
    assert upstream.accepted == 1


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbody\r\n",
    ],
    ids=["status-code", "protocol", "header-line", "content-length", "chunk-size"],
)
async def test_a_malformed_answer_raises_without_the_url(
    upstream: Upstream, client: httpx.AsyncClient, head: bytes
) -> None:
    async def garbage(ex: Exchange) -> None:
        await ex.send(head)
        await ex.peer_closed()

    target = "/v1/secret-path?key=secret-in-query"
    upstream.routes[target] = garbage  # raw_server routes by the whole target
    url = upstream.url(target)
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        async with asyncio.timeout(2):
            await client.get(url)
    message = str(caught.value)
    assert message.startswith("malformed upstream response")
    assert "secret" not in message
    assert str(upstream.port) not in message
    assert caught.value.request.url == httpx.URL(url)


@pytest.mark.parametrize("framing", ["Content-Length: 1234", "Transfer-Encoding: chunked"])
async def test_a_head_request_returns_without_a_body(
    upstream: Upstream, client: httpx.AsyncClient, framing: str
) -> None:
    async def head_only(ex: Exchange) -> None:
        assert ex.method == "HEAD"
        await ex.send(f"HTTP/1.1 200 OK\r\n{framing}\r\n\r\n".encode())
        await ex.peer_closed()  # no body follows, and the connection stays open

    upstream.routes["/head"] = head_only
    async with asyncio.timeout(2):
        response = await client.head(upstream.url("/head"))
    assert response.status_code == 200
    assert response.content == b""
    assert framing.split(": ")[1] in response.headers.values()
    assert (await client.get(upstream.url("/json"))).status_code == 200


@pytest.mark.parametrize("piece", [None, 5], ids=["whole", "in-5-byte-pieces"])
async def test_repeated_response_headers_are_all_kept_in_order(
    upstream: Upstream, client: httpx.AsyncClient, piece: int | None
) -> None:
    head = response_head(
        "200 OK",
        "Set-Cookie: a=1; Path=/",
        "X-Foo: one",
        "Set-Cookie: b=2; Path=/",
        "X-Foo: two",
        length=2,
    )

    async def repeats(ex: Exchange) -> None:
        data = head + b"ok"
        step = piece or len(data)
        for start in range(0, len(data), step):
            await ex.send(data[start : start + step])
            if piece:
                await asyncio.sleep(0.001)  # separate reads on the client's side

    upstream.routes["/repeats"] = repeats
    response = await client.get(upstream.url("/repeats"))
    assert response.content == b"ok"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers.get_list("x-foo") == ["one", "two"]
    names = [name.lower() for name, _ in response.headers.raw]
    assert names[:4] == [b"set-cookie", b"x-foo", b"set-cookie", b"x-foo"]


async def test_a_streamed_request_body_goes_out_chunked_and_whole(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    parts = [os.urandom(size) for size in (1, 100, 70_000, 3, 200_000, 65_536) * 3]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
            await asyncio.sleep(0)

    total = sum(map(len, parts))
    assert (await client.post(upstream.url("/length"), content=body())).text == str(total)
    sent = upstream.seen[-1]
    assert sent.headers["transfer-encoding"] == "chunked"  # raw_server decoded the chunks
    assert "content-length" not in sent.headers
    assert sent.body == b"".join(parts)


async def test_a_large_bytes_body_is_sent_whole(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    body = os.urandom(1024 * 1024)
    assert (await client.post(upstream.url("/length"), content=body)).text == str(len(body))
    sent = upstream.seen[-1]
    assert sent.headers["content-length"] == str(len(body))
    assert sent.body == body


async def test_a_slow_reader_gets_a_large_body_whole_without_it_all_buffered(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    body = os.urandom(2 * 1024 * 1024)
    written = 0

    async def large(ex: Exchange) -> None:
        nonlocal written
        # Small send buffers, so the server's writes block as soon as the client stops reading.
        ex.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        ex.writer.transport.set_write_buffer_limits(high=0)
        await ex.send(response_head())
        for start in range(0, len(body), 16384):
            await ex.chunk(body[start : start + 16384])
            written += 16384
        await ex.send(b"0\r\n\r\n")

    upstream.routes["/large"] = large
    response = await client.send(client.build_request("GET", upstream.url("/large")), stream=True)
    await asyncio.sleep(0.3)  # the reader stalls: the engine stops reading, the server blocks
    assert written < len(body)
    chunks = []
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        await asyncio.sleep(0.005)
    await response.aclose()
    assert b"".join(chunks) == body
    # Each chunk is all that was buffered when it was taken: never near the whole body.
    assert max(len(chunk) for chunk in chunks) <= len(body) // 2


@pytest.mark.parametrize(
    "mode",
    [
        "aread",
        "read_body",
    ],
)
async def test_a_body_larger_than_the_read_buffer_is_read_whole(
    upstream: Upstream, client: httpx.AsyncClient, mode: str
) -> None:
    body = os.urandom(1024 * 1024)

    async def large(ex: Exchange) -> None:
        await ex.send(response_head(length=len(body)) + body)

    upstream.routes["/large"] = large
    assert await fetch(client, upstream.url("/large"), mode, deadline_s=0.5) == body
