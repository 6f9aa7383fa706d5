"""Dispatcher decisions with pytest-httpx upstreams: backoff, credential rotation, verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from credentials.pool import CredentialPools, CredentialResolver
from gateway.errors import Unavailable, UpstreamClientError, UpstreamFailed
from gateway.request.plan import Plan
from gateway.upstream.dispatch import Dispatcher
from gateway.upstream.strategy import RouteCursors
from gateway.upstream.transport import create_http_client
from gateway.vocabulary import Op
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target

SECRETS = {"K1": "first-secret-0123456789", "K2": "second-secret-0123456789"}


def provider(host: str, **fields: object) -> Provider:
    return Provider.model_validate(
        {"type": "openai-compatible", "base_url": f"https://{host}/v1", **fields}
    )


def route(*targets: tuple[str, Provider]) -> ResolvedRoute:
    specs = tuple(f"{name}/m" for name, _ in targets)
    resolved = tuple(Target(name, p, "m") for name, p in targets)
    return ResolvedRoute("r", "r", Route(targets=specs), resolved)


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client(transport=httpx.AsyncHTTPTransport()) as http:
        yield http


def dispatcher(
    client: httpx.AsyncClient, tmp_path: Path, sleeps: Sleeps, jitter: float = 1.0
) -> Dispatcher:
    pools = CredentialPools(CredentialResolver(tmp_path, SECRETS))
    return Dispatcher(client, pools, RouteCursors(), sleep=sleeps, rng=lambda: jitter)


async def open_body(d: Dispatcher, r: ResolvedRoute) -> bytes:
    opened = await d.open(r, False, lambda target: Plan(Op.CHAT, target.provider_name.encode()))
    try:
        return await opened.response.aread()
    finally:
        await opened.response.aclose()


async def test_backoff_is_exponential_capped_and_fully_jittered(
    httpx_mock: HTTPXMock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    for _ in range(7):
        httpx_mock.add_response(url="https://a.test/v1/chat/completions", status_code=500)
    sleeps = Sleeps()
    d = dispatcher(client, tmp_path, sleeps, jitter=1.0)
    with pytest.raises(UpstreamFailed):
        await open_body(d, route(("a", provider("a.test", max_retries=6))))
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    half = Sleeps()
    for _ in range(3):
        httpx_mock.add_response(url="https://a.test/v1/chat/completions", status_code=503)
    with pytest.raises(UpstreamFailed):
        await open_body(
            dispatcher(client, tmp_path, half, 0.5), route(("a", provider("a.test", max_retries=2)))
        )
    assert half == [0.1, 0.2]


async def test_429_moves_to_the_next_credential_then_all_cooling_is_503(
    httpx_mock: HTTPXMock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    url = "https://a.test/v1/chat/completions"
    httpx_mock.add_response(url=url, status_code=429, headers={"retry-after": "20"})
    httpx_mock.add_response(url=url, json={"ok": 1})
    p = provider("a.test", credentials=["env:K1", "env:K2"], selection="fill-first")
    d = dispatcher(client, tmp_path, Sleeps())
    assert await open_body(d, route(("a", p))) == b'{"ok":1}'
    sent = [r.headers["authorization"] for r in httpx_mock.get_requests()]
    assert sent == [f"Bearer {SECRETS['K1']}", f"Bearer {SECRETS['K2']}"]
    httpx_mock.add_response(url=url, status_code=429, headers={"retry-after": "4.2"})
    with pytest.raises(Unavailable) as caught:
        await open_body(d, route(("a", p)))
    assert caught.value.headers == {"retry-after": "5"}  # K2 back in 4.2 s, K1 in 20 s


async def test_failover_builds_each_targets_own_body(
    httpx_mock: HTTPXMock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    httpx_mock.add_response(url="https://a.test/v1/chat/completions", status_code=502)
    httpx_mock.add_response(url="https://b.test/v1/chat/completions", json={"from": "b"})
    d = dispatcher(client, tmp_path, Sleeps())
    r = route(("a", provider("a.test", max_retries=0)), ("b", provider("b.test")))
    assert await open_body(d, r) == b'{"from":"b"}'
    assert [q.content for q in httpx_mock.get_requests()] == [b"a", b"b"]


async def test_a_client_error_stops_everything(
    httpx_mock: HTTPXMock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    httpx_mock.add_response(
        url="https://a.test/v1/chat/completions",
        status_code=400,
        json={"error": {"message": "temperature must be at most 2"}},
    )
    d = dispatcher(client, tmp_path, Sleeps())
    r = route(("a", provider("a.test", max_retries=3)), ("b", provider("b.test")))
    with pytest.raises(UpstreamClientError) as caught:
        await open_body(d, r)
    assert caught.value.status_code == 400
    assert caught.value.message == "temperature must be at most 2"
    assert len(httpx_mock.get_requests()) == 1
