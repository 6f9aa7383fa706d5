"""The HTTP/1.1 engine's connections on asyncio's loop and uvloop: reuse, the one retry, the pool.

The wire comes from tests/upstream/raw_server, byte by byte. Messages (framing, informational
answers, malformed heads, flow control) are in test_http1_messages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvloop

from gateway.upstream.transport import Http1Transport, UpstreamClient, create_http_client
from tests.upstream.raw_server import (
    Exchange,
    Handler,
    Upstream,
    answer_json,
    eventually,
    response_head,
)

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


def hangs_up_on(*calls: int) -> Handler:
    """answer_json, except for the `calls`-th requests (from 1), left unanswered and hung up on."""
    count = 0

    async def handler(ex: Exchange) -> None:
        nonlocal count
        count += 1
        if count in calls:
            ex.writer.close()
        else:
            await answer_json(ex)

    return handler


async def test_runs_on_the_loop_it_names(request: pytest.FixtureRequest) -> None:
    on_uvloop = isinstance(asyncio.get_running_loop(), uvloop.Loop)
    assert on_uvloop == ("uvloop" in request.node.name)


async def test_a_connection_the_upstream_closed_while_idle_is_replaced(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def answers_then_hangs_up(ex: Exchange) -> None:
        await answer_json(ex)
        ex.writer.close()  # e.g. the upstream's own keep-alive timeout

    upstream.routes["/once"] = answers_then_hangs_up
    assert (await client.get(upstream.url("/once"))).status_code == 200
    await eventually(lambda: upstream.open_connections == 0)
    assert (await client.get(upstream.url("/json"))).status_code == 200
    assert upstream.accepted == 2


async def test_a_reused_connection_dying_before_any_answer_byte_is_retried_once(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    # The upstream closes the kept-alive connection just as the second request goes out.
    upstream.routes["/flaky"] = hangs_up_on(2)
    assert (await client.post(upstream.url("/flaky"), content=b"first")).status_code == 200
    response = await client.post(upstream.url("/flaky"), content=b"second")
    assert response.json()["body"] == "second"
    assert [ex.body for ex in upstream.seen] == [b"first", b"second", b"second"]
    assert upstream.accepted == 2


async def test_the_retry_happens_once_only(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.routes["/flaky"] = hangs_up_on(2, 3)
    await client.get(upstream.url("/flaky"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url("/flaky"))
    assert len(upstream.seen) == 3
    assert upstream.accepted == 2


async def test_a_fresh_connection_dying_before_answering_is_not_retried(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.routes["/flaky"] = hangs_up_on(1)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(upstream.url("/flaky"), content=b"{}")
    assert len(upstream.seen) == 1
    assert upstream.accepted == 1


async def test_a_reused_connection_dying_mid_answer_is_not_retried(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    count = 0

    async def breaks_off(ex: Exchange) -> None:
        nonlocal count
        count += 1
        if count == 1:
            await answer_json(ex)
        else:  # the upstream saw and began answering this one: it must not be sent twice
            await ex.send(b"HTTP/1.1 200 OK\r\nContent-")
            ex.writer.close()

    upstream.routes["/breaks"] = breaks_off
    await client.get(upstream.url("/breaks"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(upstream.url("/breaks"))
    assert len(upstream.seen) == 2


async def test_a_retry_never_sends_a_streamed_body_short(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    upstream.routes["/flaky"] = hangs_up_on(2)
    await client.get(upstream.url("/flaky"))

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    # Either the request fails or the upstream gets it whole; never an empty body.
    with contextlib.suppress(httpx.RemoteProtocolError):
        await client.post(upstream.url("/flaky"), content=parts())
    assert [ex.body for ex in upstream.seen[1:]] == [b'{"a":1}'] * (len(upstream.seen) - 1)


@pytest.mark.parametrize(
    ("head", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", True),
    ],
    ids=["connection-close", "http-1.0", "http-1.0-keep-alive"],
)
async def test_a_connection_is_reused_only_if_the_upstream_keeps_it_alive(
    upstream: Upstream, client: httpx.AsyncClient, head: bytes, reused: bool
) -> None:
    async def answers(ex: Exchange) -> None:
        await ex.send(head + b"ok")  # and leaves the connection open: closing is the client's

    upstream.routes["/answer"] = answers
    assert (await client.get(upstream.url("/answer"))).content == b"ok"
    if not reused:
        await eventually(lambda: upstream.open_connections == 0)
    assert (await client.get(upstream.url("/answer"))).content == b"ok"
    assert upstream.accepted == (1 if reused else 2)


async def test_an_idle_connection_past_keepalive_expiry_is_not_reused(upstream: Upstream) -> None:
    async with create_http_client(keepalive_expiry=0.3) as client:
        await client.get(upstream.url("/json"))
        await client.get(upstream.url("/json"))
        assert upstream.accepted == 1  # within the expiry: reused
        await asyncio.sleep(0.4)
        await client.get(upstream.url("/json"))
        assert upstream.accepted == 2
        await eventually(lambda: upstream.open_connections == 1)  # the stale one was closed


async def test_with_one_connection_a_second_request_waits_for_the_first(
    upstream: Upstream,
) -> None:
    first_may_end = asyncio.Event()

    async def slow(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"first")
        await first_may_end.wait()
        await ex.send(b"0\r\n\r\n")

    upstream.routes["/slow"] = slow
    async with create_http_client(max_connections=1) as client:
        first = await client.send(client.build_request("GET", upstream.url("/slow")), stream=True)
        second = asyncio.create_task(
            client.get(upstream.url("/json"), timeout=httpx.Timeout(5, pool=5))
        )
        await asyncio.sleep(0.1)
        assert not second.done()
        assert len(upstream.seen) == 1
        first_may_end.set()
        assert await first.aread() == b"first"
        response = await asyncio.wait_for(second, 2)
        assert response.status_code == 200
        assert upstream.accepted == 1


async def test_a_cancelled_waiter_passes_its_free_slot_on(upstream: Upstream) -> None:
    async with create_http_client(max_connections=1) as client:
        first = await client.send(client.build_request("GET", upstream.url("/json")), stream=True)
        waiting = [
            asyncio.create_task(client.get(upstream.url("/json"), timeout=httpx.Timeout(0.5)))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in waiting)
        await first.aread()  # releases the connection and wakes the first waiter...
        waiting[0].cancel()  # ...whose caller goes away before it could run
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]
        assert (await waiting[1]).status_code == 200  # PoolTimeout if the wake-up was lost


async def test_aclose_closes_every_connection(upstream: Upstream) -> None:
    held = asyncio.Event()

    async def held_open(ex: Exchange) -> None:
        await ex.send(response_head())
        await ex.chunk(b"partial")
        await held.wait()
        await ex.send(b"0\r\n\r\n")

    upstream.routes["/held"] = held_open
    engine = Http1Transport()
    async with UpstreamClient(transport=engine, timeout=httpx.Timeout(5)) as client:
        await asyncio.gather(*(client.get(upstream.url("/json")) for _ in range(3)))
        in_flight = await client.send(
            client.build_request("GET", upstream.url("/held")), stream=True
        )
        assert upstream.open_connections == 3  # /held went out on one of the three
        await engine.aclose()
        await eventually(lambda: upstream.open_connections == 1)  # the idle ones
        held.set()
        assert await in_flight.aread() == b"partial"
        await eventually(lambda: upstream.open_connections == 0)  # finished, not pooled


async def test_an_idle_connection_that_gets_unasked_bytes_is_not_reused(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def answers_then_times_out(ex: Exchange) -> None:
        await answer_json(ex)
        # Some servers announce their idle timeout with a 408 and close a moment later.
        await ex.send(response_head("408 Request Timeout", length=0))

    upstream.routes["/once"] = answers_then_times_out
    assert (await client.get(upstream.url("/once"))).status_code == 200
    await asyncio.sleep(0.05)  # the unasked 408 arrives on the idle connection
    response = await client.get(upstream.url("/json"))
    assert response.status_code == 200
    assert upstream.accepted == 2


async def test_failed_connects_give_their_slots_back() -> None:
    probe = await Upstream().start()
    port = probe.port
    await probe.stop()  # nothing listens there any more
    server = await Upstream(routes={"/json": answer_json}).start()
    try:
        async with create_http_client(max_connections=2) as client:
            for _ in range(5):
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"http://127.0.0.1:{port}/json")
            timeout = httpx.Timeout(5, pool=0.5)
            responses = await asyncio.gather(
                *(client.get(server.url("/json"), timeout=timeout) for _ in range(2))
            )
            assert [r.status_code for r in responses] == [200, 200]
    finally:
        await server.stop()


async def test_idle_connections_to_an_origin_no_longer_called_are_closed() -> None:
    first = await Upstream(routes={"/json": answer_json}).start()
    second = await Upstream(routes={"/json": answer_json}).start()
    try:
        async with create_http_client(keepalive_expiry=0.2) as client:
            assert (await client.get(first.url("/json"))).status_code == 200
            assert first.open_connections == 1  # kept for the next request
            await asyncio.sleep(0.3)
            # Only the other origin is called now; its traffic retires the first's socket.
            assert (await client.get(second.url("/json"))).status_code == 200
            await eventually(lambda: first.open_connections == 0)
            assert second.open_connections == 1
    finally:
        await first.stop()
        await second.stop()
