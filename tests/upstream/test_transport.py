"""The upstream HTTP engine against a real HTTP server on 127.0.0.1 (tests/upstream/raw_server)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from gateway.upstream.transport import Http1Transport, UpstreamClient, create_http_client
from tests.upstream.raw_server import (
    Exchange,
    Upstream,
    answer_json,
    eventually,
    response_head,
    write_self_signed_certificate,
)


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


async def test_cancelling_a_request_closes_its_upstream_connection(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    peer_closed = asyncio.Event()

    async def thinking(ex: Exchange) -> None:
        await ex.peer_closed()
        peer_closed.set()

    upstream.routes["/thinking"] = thinking
    # The gateway's client went away while the upstream had not answered yet.
    request = asyncio.create_task(client.post(upstream.url("/thinking"), content=b"{}"))
    await eventually(lambda: len(upstream.seen) == 1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(peer_closed.wait(), 2)


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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_self_signed_certificate(tmp_path_factory.mktemp("tls"))


async def test_tls_upstream_verified_against_the_trust_store(certificate: Path) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate)
    server = await Upstream(routes={"/json": answer_json}).start(tls=server_tls)
    url = f"https://127.0.0.1:{server.port}/json"
    try:
        # Not signed by anyone the default trust store knows: refused.
        async with create_http_client() as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(url)
        trust = ssl.create_default_context(cafile=str(certificate))
        engine = Http1Transport(ssl_context=trust)
        async with UpstreamClient(transport=engine, timeout=httpx.Timeout(5)) as trusting:
            response = await trusting.post(url, content=b"{}")
            assert response.json()["body"] == "{}"
    finally:
        await server.stop()
