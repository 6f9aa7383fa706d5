"""The upstream HTTP engine against a real HTTP server on 127.0.0.1.

The server is a few dozen lines of raw asyncio so that each test controls the wire exactly:
when a chunk is written, when the connection is reset, whether the peer hung up.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from pytest_httpx import HTTPXMock

from gateway.upstream.transport import create_http_client

Handler = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the server saw it, and the means to answer it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        await self.send(b"%x\r\n%s\r\n" % (len(data), data))

    async def peer_closed(self) -> None:
        """Returns once the client closed its end of the connection."""
        while await self.reader.read(65536):
            pass


@dataclass
class Upstream:
    """A loopback HTTP/1.1 server; `routes` maps a path to a coroutine answering it."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Exchange] = field(default_factory=list)
    accepted: int = 0
    open_connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.open_connections += 1
        try:
            while exchange := await self._read_request(reader, writer):
                self.seen.append(exchange)
                await self.routes[exchange.path](exchange)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _read_request(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Exchange | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                assert name.lower() not in headers, f"duplicate header {name}"
                headers[name.lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(int(headers.get("content-length", 0)))
        return Exchange(method, path, headers, body, reader, writer)


def response_head(status: str = "200 OK", *extra: str, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", *extra]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def answer_json(ex: Exchange) -> None:
    body = json.dumps({"path": ex.path, "headers": ex.headers, "body": ex.body.decode()}).encode()
    head = response_head("200 OK", "Content-Type: application/json", length=len(body))
    await ex.send(head + body)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream(routes={"/json": answer_json}).start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client() as http:
        yield http


async def eventually(condition: Callable[[], bool]) -> None:
    """Polls for up to two seconds."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition still false after 2 s")


async def test_non_stream_body_status_and_headers(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    request = client.build_request(
        "POST",
        upstream.url("/json"),
        content=b'{"model":"m"}',
        headers={"authorization": "Bearer up-secret", "content-type": "application/json"},
    )
    response = await client.send(request)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.request is request
    sent = response.json()
    assert sent["body"] == '{"model":"m"}'
    assert sent["headers"]["authorization"] == "Bearer up-secret"
    assert sent["headers"]["content-length"] == "13"
    assert sent["headers"]["host"] == f"127.0.0.1:{upstream.port}"
    # Plain bytes from upstreams, so pass-through can scan them as they are.
    assert sent["headers"]["accept-encoding"] == "identity"


async def test_error_status_passes_through(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async def limited(ex: Exchange) -> None:
        body = b'{"error":{"message":"slow down"}}'
        await ex.send(response_head("429 Too Many Requests", "Retry-After: 7", length=len(body)))
        await ex.send(body)

    upstream.routes["/limited"] = limited
    response = await client.post(upstream.url("/limited"), content=b"{}")
    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["message"] == "slow down"


async def test_streamed_chunks_arrive_as_they_are_sent(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    second_may_go = asyncio.Event()

    async def gated(ex: Exchange) -> None:
        await ex.send(response_head("200 OK", "Content-Type: text/event-stream"))
        await ex.chunk(b"data: one\n\n")
        await second_may_go.wait()
        await ex.chunk(b"data: two\n\n")
        await ex.send(b"0\r\n\r\n")

    upstream.routes["/sse"] = gated
    response = await client.send(client.build_request("POST", upstream.url("/sse")), stream=True)
    chunks = response.aiter_raw()
    # The server holds the second chunk until the first reached us: a buffering client hangs.
    first = await asyncio.wait_for(anext(chunks), 2)
    assert first == b"data: one\n\n"
    second_may_go.set()
    rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"data: two\n\n"
    await response.aclose()


async def test_upstream_reset_mid_stream_raises(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def reset(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"data: partial\n\n")
        await asyncio.sleep(0.05)
        sock = ex.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ex.writer.close()  # linger 0: the kernel sends RST

    upstream.routes["/reset"] = reset
    response = await client.send(client.build_request("GET", upstream.url("/reset")), stream=True)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        async for chunk in response.aiter_raw():
            received.append(chunk)
    assert received == [b"data: partial\n\n"]
    await response.aclose()


async def test_upstream_hanging_up_mid_body_raises(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def short(ex: Exchange) -> None:
        await ex.send(response_head(length=100) + b"only part")
        ex.writer.close()

    upstream.routes["/short"] = short
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url("/short"))


async def test_no_response_at_all_raises(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async def hang_up(ex: Exchange) -> None:
        ex.writer.close()

    upstream.routes["/hang-up"] = hang_up
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(upstream.url("/hang-up"), content=b"{}")


async def test_aclose_mid_stream_closes_the_upstream_connection(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    peer_closed = asyncio.Event()

    async def endless(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"data: first\n\n")
        await ex.peer_closed()
        peer_closed.set()

    upstream.routes["/endless"] = endless
    response = await client.send(client.build_request("GET", upstream.url("/endless")), stream=True)
    assert await anext(response.aiter_raw()) == b"data: first\n\n"
    await response.aclose()
    await asyncio.wait_for(peer_closed.wait(), 2)
    # The half-read connection was not pooled: the next request opens a new one.
    assert (await client.get(upstream.url("/json"))).status_code == 200
    assert upstream.accepted == 2


async def test_a_fully_read_connection_is_reused(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    for _ in range(5):
        response = await client.send(
            client.build_request("GET", upstream.url("/json")), stream=True
        )
        await response.aread()
        await response.aclose()
    assert upstream.accepted == 1


async def test_read_timeout_before_the_response(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def silent(ex: Exchange) -> None:
        await ex.peer_closed()

    upstream.routes["/silent"] = silent
    with pytest.raises(httpx.ReadTimeout):
        await client.get(upstream.url("/silent"), timeout=httpx.Timeout(5, read=0.2))


async def test_read_timeout_between_chunks(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async def stalls(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"data: first\n\n")
        await ex.peer_closed()

    upstream.routes["/stalls"] = stalls
    request = client.build_request(
        "GET", upstream.url("/stalls"), timeout=httpx.Timeout(5, read=0.2)
    )
    response = await client.send(request, stream=True)
    with pytest.raises(httpx.ReadTimeout):
        async for _ in response.aiter_raw():
            pass
    await response.aclose()


async def test_waiting_for_a_pooled_connection_times_out(upstream: Upstream) -> None:
    async def held(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.peer_closed()

    upstream.routes["/held"] = held
    async with create_http_client(max_connections=1) as client:
        first = await client.send(client.build_request("GET", upstream.url("/held")), stream=True)
        with pytest.raises(httpx.TimeoutException):
            await client.get(upstream.url("/json"), timeout=httpx.Timeout(5, connect=0.1, pool=0.1))
        await first.aclose()
        async with asyncio.timeout(5):  # the closed connection's slot is free again
            assert (await client.get(upstream.url("/json"))).status_code == 200


async def test_connection_refused_raises_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(httpx.ConnectError) as caught:
        await client.post(f"http://127.0.0.1:{port}/v1/x?key=secret-in-query", content=b"{}")
    assert "secret-in-query" not in str(caught.value)
    assert caught.value.request.url.port == port


async def test_no_connection_leaks_after_many_requests(upstream: Upstream) -> None:
    async def two_chunks(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"data: a\n\n")
        await ex.chunk(b"data: b\n\n")
        await ex.send(b"0\r\n\r\n")

    upstream.routes["/two"] = two_chunks
    concurrency, rounds = 8, 25
    async with create_http_client() as client:

        async def one(i: int) -> None:
            path = "/two" if i % 2 else "/json"
            response = await client.send(
                client.build_request("GET", upstream.url(path)), stream=True
            )
            if i % 5 == 0:
                await anext(response.aiter_raw())  # abandoned after the first chunk
            else:
                await response.aread()
            await response.aclose()

        for r in range(rounds):
            await asyncio.gather(*(one(r * concurrency + i) for i in range(concurrency)))
        assert len(upstream.seen) == concurrency * rounds
        # Finished responses reuse their connections: new ones only replace abandoned ones.
        assert upstream.accepted <= concurrency + concurrency * rounds // 5
        await eventually(lambda: upstream.open_connections <= concurrency)
    await eventually(lambda: upstream.open_connections == 0)


async def test_streamed_request_body_is_sent(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    response = await client.post(upstream.url("/json"), content=parts())
    assert response.json()["body"] == '{"a":1}'


async def test_no_cookies_carry_over_between_requests(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def sets_cookie(ex: Exchange) -> None:
        await ex.send(response_head("200 OK", "Set-Cookie: tenant=a; Path=/", length=0))

    upstream.routes["/cookie"] = sets_cookie
    await client.get(upstream.url("/cookie"))
    sent = (await client.get(upstream.url("/json"))).json()
    assert "cookie" not in sent["headers"]
    assert len(client.cookies) == 0


async def test_event_hooks_still_run(upstream: Upstream, client: httpx.AsyncClient) -> None:
    seen: list[int] = []

    async def on_response(response: httpx.Response) -> None:
        seen.append(response.status_code)

    client.event_hooks["response"].append(on_response)
    assert (await client.get(upstream.url("/json"))).status_code == 200
    assert seen == [200]


async def test_closed_client_refuses_to_send(upstream: Upstream) -> None:
    client = create_http_client()
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.get(upstream.url("/json"))


async def test_pytest_httpx_mocks_a_client_built_on_httpx_transport(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://upstream.test/v1/chat", json={"ok": True})
    async with create_http_client(transport=httpx.AsyncHTTPTransport()) as client:
        response = await client.send(
            client.build_request("POST", "https://upstream.test/v1/chat", content=b"{}"),
            stream=True,
        )
        assert await response.aread() == b'{"ok":true}'
        await response.aclose()
    assert httpx_mock.get_request() is not None
