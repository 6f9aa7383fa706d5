"""The upstream connection cap, as the dispatcher meets it (issue 19).

A worker opens at most `--upstream-max-connections` upstream connections. A request that finds
them all busy (long streams hold theirs for minutes) waits for one, and gets it as soon as one
frees; it waits at most `--upstream-pool-timeout`, then it is answered 503 at once (no retry:
another target would wait on the same cap), with a log line for the operators and no
upstream URL in the message. Before this, it waited for the upstream's first-byte timeout
(minutes), then was retried and answered 502 as if the upstream had failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from credentials.pool import CredentialPools, CredentialResolver
from gateway.errors import UpstreamConnectionsBusy
from gateway.request.plan import Plan
from gateway.settings import add_serve_arguments, settings_from_args
from gateway.upstream.dispatch import Dispatcher, Opened
from gateway.upstream.strategy import RouteCursors
from gateway.upstream.transport import create_http_client, upstream_connection_cap
from gateway.vocabulary import Op
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target
from tests.upstream.raw_server import Exchange, Upstream, response_head

on_both_loops = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

PATH = "/v1/chat/completions"


class HeldStreams:
    """Upstream streams that send their head and one chunk, then stay open until released."""

    def __init__(self, upstream: Upstream) -> None:
        self.release = asyncio.Event()
        upstream.routes[PATH] = self.answer

    async def answer(self, ex: Exchange) -> None:
        await ex.send(response_head("200 OK", "Content-Type: text/event-stream"))
        await ex.chunk(b"data: {}\n\n")
        await self.release.wait()
        await ex.send(b"0\r\n\r\n")


def route_to(upstream: Upstream) -> ResolvedRoute:
    # Timeouts far above the test's bound: only the pool timeout may end a wait.
    provider = Provider.model_validate(
        {
            "type": "openai-compatible",
            "base_url": upstream.url("/v1"),
            "credentials": ["env:KEY"],
            "timeout_s": 60,
            "max_retries": 2,
        }
    )
    return ResolvedRoute("r", "r", Route(targets=("p/m",)), (Target("p", provider, "m"),))


@pytest.fixture
async def capped(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    cap, pool_timeout = request.param
    async with create_http_client(max_connections=cap, pool_timeout=pool_timeout) as client:
        yield client


def dispatcher(client: httpx.AsyncClient, tmp_path: Path) -> Dispatcher:
    pools = CredentialPools(CredentialResolver(tmp_path, {"KEY": "sk-test-0123"}))

    async def no_sleep(_: float) -> None:
        return None

    return Dispatcher(client, pools, RouteCursors(), sleep=no_sleep, rng=lambda: 0.0)


async def open_stream(d: Dispatcher, route: ResolvedRoute) -> Opened:
    return await d.open(route, True, lambda target: Plan(Op.CHAT, b"{}"))


@on_both_loops
@pytest.mark.parametrize("capped", [(2, 5.0)], indirect=True)
async def test_a_request_over_the_cap_waits_and_gets_the_connection_that_frees(
    upstream: Upstream, capped: httpx.AsyncClient, tmp_path: Path
) -> None:
    held = HeldStreams(upstream)
    d, route = dispatcher(capped, tmp_path), route_to(upstream)
    first = await open_stream(d, route)
    second = await open_stream(d, route)
    third = asyncio.create_task(open_stream(d, route))
    await asyncio.sleep(0.3)
    assert not third.done()  # both connections are busy: it waits
    assert upstream.accepted == 2 and len(upstream.seen) == 2
    await first.response.aclose()  # a stream ends early: its connection closes
    opened = await asyncio.wait_for(third, 2)
    assert opened.response.status_code == 200
    assert len(upstream.seen) == 3
    held.release.set()
    for each in (second, opened):
        await each.response.aread()
        await each.response.aclose()


@on_both_loops
@pytest.mark.parametrize("capped", [(1, 0.3)], indirect=True)
async def test_a_wait_past_the_pool_timeout_is_answered_503_at_once(
    upstream: Upstream,
    capped: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = HeldStreams(upstream)
    d, route = dispatcher(capped, tmp_path), route_to(upstream)
    first = await open_stream(d, route)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="modelgate.upstream"),
        pytest.raises(UpstreamConnectionsBusy) as busy,
    ):
        await asyncio.wait_for(open_stream(d, route), 5)  # TimeoutError: it hung
    waited = time.monotonic() - started
    assert 0.25 <= waited < 2  # the pool timeout, not a retry after it
    err = busy.value
    assert err.status_code == 503
    assert err.kind == "upstream_connections"  # modelgate_request_errors{error=...}
    assert err.headers.get("retry-after") == "1"
    assert "127.0.0.1" not in err.message and "sk-test" not in err.message
    assert len(upstream.seen) == 1  # never sent, never retried
    logged = [r for r in caplog.records if "connection cap reached" in r.getMessage()]
    assert len(logged) == 1
    assert getattr(logged[0], "max_connections", None) == 1
    held.release.set()
    await first.response.aread()
    await first.response.aclose()


def test_the_default_cap_is_the_client_cap_within_the_open_files_limit() -> None:
    assert upstream_connection_cap(500, 7, open_files=100_000) == 7  # set: as set
    assert upstream_connection_cap(500, 0, open_files=100_000) == 500
    assert upstream_connection_cap(1024, 0, open_files=1024) == (1024 - 128) // 2
    assert upstream_connection_cap(1024, 0, open_files=None) == 1024  # unlimited
    assert upstream_connection_cap(1024, 0, open_files=10) == 1


def test_the_cap_and_the_wait_are_serve_flags_and_mg_variables() -> None:
    parser = argparse.ArgumentParser()
    environ = {"MG_UPSTREAM_MAX_CONNECTIONS": "5000", "MG_BACKLOG": "4096"}
    add_serve_arguments(parser, environ)
    settings = settings_from_args(parser.parse_args(["--upstream-pool-timeout", "2.5"]))
    assert settings.upstream_max_connections == 5000
    assert settings.upstream_pool_timeout_s == 2.5
    assert settings.backlog == 4096
    bare = argparse.ArgumentParser()
    add_serve_arguments(bare, {})
    defaults = settings_from_args(bare.parse_args([]))
    assert (defaults.upstream_max_connections, defaults.upstream_pool_timeout_s) == (0, 10.0)
    assert defaults.backlog == 1024  # Sanic's own default is 100
