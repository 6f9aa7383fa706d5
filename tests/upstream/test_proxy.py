"""Upstream calls through an egress proxy: CONNECT tunnels to a loopback proxy, TLS inside."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.upstream.proxy import ProxyConfigError, UpstreamProxy
from gateway.upstream.transport import Http1Transport, UpstreamClient, create_http_client
from tests.support.connect_proxy import ConnectProxy
from tests.upstream.raw_server import Upstream, answer_json, write_self_signed_certificate

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    server = await ConnectProxy().start()
    yield server
    await server.stop()


def through(proxy_url: str, no_proxy: str = "") -> httpx.AsyncClient:
    return create_http_client(proxy=UpstreamProxy.parse(proxy_url, no_proxy))


async def test_requests_go_through_one_kept_tunnel(upstream: Upstream, proxy: ConnectProxy) -> None:
    async with through(proxy.url()) as client:
        for _ in range(3):
            response = await client.post(upstream.url("/json"), content=b'{"a":1}')
            assert response.json()["body"] == '{"a":1}'
    assert proxy.tunnels == [f"127.0.0.1:{upstream.port}"]  # keep-alive inside the tunnel


async def test_tls_runs_inside_the_tunnel(proxy: ConnectProxy, tmp_path: Path) -> None:
    certificate = write_self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate)
    server = await Upstream(routes={"/json": answer_json}).start(tls=server_tls)
    try:
        engine = Http1Transport(
            ssl_context=ssl.create_default_context(cafile=str(certificate)),
            proxy=UpstreamProxy.parse(proxy.url(), no_proxy=""),
        )
        async with UpstreamClient(transport=engine, timeout=httpx.Timeout(5)) as client:
            response = await client.post(f"https://127.0.0.1:{server.port}/json", content=b"{}")
            assert response.json()["body"] == "{}"
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]
    finally:
        await server.stop()


async def test_the_proxy_password_is_sent_and_never_shown(upstream: Upstream) -> None:
    guarded = await ConnectProxy(password="proxy-secret").start()
    try:
        async with through(guarded.url("ops:proxy-secret@")) as client:
            assert (await client.get(upstream.url("/json"))).status_code == 200
        async with through(guarded.url("ops:wrong-secret@")) as client:
            with pytest.raises(httpx.ProxyError) as refused:
                await client.get(upstream.url("/json"))
        assert "407" in str(refused.value)
        assert "secret" not in str(refused.value)
    finally:
        await guarded.stop()


async def test_hosts_on_no_proxy_are_reached_directly(
    upstream: Upstream, proxy: ConnectProxy
) -> None:
    async with through(proxy.url(), no_proxy="localhost,127.0.0.1") as client:
        assert (await client.get(upstream.url("/json"))).status_code == 200
    assert proxy.tunnels == []


async def test_proxy_settings_are_checked() -> None:
    proxy = UpstreamProxy.parse("http://ops:p%40ss@proxy.internal:3128", "localhost,.corp,10.0.0.5")
    assert (proxy.host, proxy.port) == ("proxy.internal", 3128)
    assert proxy.authorization == b"Basic " + base64.b64encode(b"ops:p@ss")
    assert not proxy.applies_to("localhost")
    assert not proxy.applies_to("ollama.corp") and not proxy.applies_to("corp")
    assert not proxy.applies_to("10.0.0.5")
    assert proxy.applies_to("api.openai.com") and proxy.applies_to("notcorp")
    for bad in ("https://proxy:3128", "socks5://proxy:1080", "http://:3128", "http://h:99999"):
        with pytest.raises(ProxyConfigError) as caught:
            UpstreamProxy.parse(bad)
        assert "p%40ss" not in str(caught.value)
