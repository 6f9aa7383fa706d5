"""The engine writes no request head that an upstream could read otherwise (issue 12, finding 1).

A CR, LF or NUL in a header name or value, or a header name or method that is not an HTTP
token, is httpx.LocalProtocolError before any byte reaches a socket, whichever source put
the header there: a client's forwarded header, the policy's `provider.headers`, a credential
or an OAuth access token. The keep-alive connection already in the pool stays clean for the
next request. The dispatcher gives up at once on such a request (no other credential, no
other target) with a 502 that names no secret and no URL.

The upstream is tests/upstream/raw_server: it splits heads on CRLF, so what it records is
exactly what the engine wrote.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from credentials.pool import CredentialPools, CredentialResolver
from gateway.errors import BadRequest, Protocol, UpstreamFailed
from gateway.request.plan import Plan
from gateway.upstream.dispatch import Dispatcher
from gateway.upstream.endpoints import auth_headers
from gateway.upstream.strategy import RouteCursors
from gateway.vocabulary import Op
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target
from tests.upstream.raw_server import Exchange, Upstream, response_head

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

INJECTED = "X-Injected: 1"
BREAKS = {
    "crlf": f"x\r\n{INJECTED}",
    "bare-lf": f"x\n{INJECTED}",
    "bare-cr": f"x\r{INJECTED}",
    "nul": "x\x00y",
    "smuggled-request": "x\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


def provider(kind: str, url: str, **fields: object) -> Provider:
    return Provider.model_validate({"type": kind, "base_url": url, **fields})


def unchecked(kind: str, url: str, headers: dict[str, str]) -> Provider:
    """A provider whose `headers` skipped the policy's check (as a bug there would let by)."""
    return provider(kind, url).model_copy(update={"headers": headers})


Source = Callable[[str, str], dict[str, str]]
"""(a hostile string, the upstream URL) -> request headers as dispatch builds them."""

SOURCES: dict[str, Source] = {
    "client-anthropic-beta": lambda s, url: {
        **auth_headers(provider("anthropic", url), "key"),
        "anthropic-beta": s,
    },
    "policy-provider-headers": lambda s, url: auth_headers(
        unchecked("openai", url, {"x-team": s}), "key"
    ),
    "anthropic-credential": lambda s, url: auth_headers(provider("anthropic", url), s),
    "gemini-credential": lambda s, url: auth_headers(provider("gemini", url), s),
    "azure-credential": lambda s, url: auth_headers(provider("azure-openai", url), s),
    "openai-credential": lambda s, url: auth_headers(provider("openai", url), s),
    "oauth-token": lambda s, url: {
        **auth_headers(provider("openai", url), None),
        "authorization": f"Bearer {s}",
    },
}


async def send_json(client: httpx.AsyncClient, upstream: Upstream, body: bytes) -> bytes:
    response = await client.post(upstream.url("/json"), content=body)
    return response.content


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("bad", BREAKS.values(), ids=BREAKS.keys())
async def test_a_break_in_a_header_value_is_refused_and_nothing_is_written(
    upstream: Upstream, client: httpx.AsyncClient, source: str, bad: str
) -> None:
    await send_json(client, upstream, b"first")  # a keep-alive connection now in the pool
    headers = SOURCES[source](bad, upstream.url("/"))
    request = client.build_request("POST", upstream.url("/json"), content=b"{}", headers=headers)
    with pytest.raises(httpx.LocalProtocolError) as refused:
        await client.send(request)
    message = str(refused.value)
    assert "nothing was sent" in message
    assert INJECTED not in message and "smuggled" not in message  # never the value itself
    answer = json.loads(await send_json(client, upstream, b"after"))
    assert answer["body"] == "after"
    assert [ex.body for ex in upstream.seen] == [b"first", b"after"]
    assert upstream.accepted == 1  # the pooled connection served both, unharmed
    assert not any("x-injected" in ex.headers for ex in upstream.seen)


@pytest.mark.parametrize("name", ["x y", "x:y", "x\r\ny", "x\ny", "x\x00", "(x)", "x\x7f", ""])
async def test_a_header_name_that_is_not_a_token_is_refused(
    upstream: Upstream, client: httpx.AsyncClient, name: str
) -> None:
    request = client.build_request(
        "POST", upstream.url("/json"), content=b"{}", headers={name: "v"}
    )
    with pytest.raises(httpx.LocalProtocolError, match="not an HTTP token"):
        await client.send(request)
    assert upstream.accepted == 0


async def test_a_method_that_is_not_a_token_is_refused(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    with pytest.raises(httpx.LocalProtocolError, match="method"):
        await client.send(client.build_request("GET /x HTTP/1.1\r\nX:", upstream.url("/json")))
    assert upstream.accepted == 0


async def test_a_streamed_body_is_not_started_either(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"never"

    request = client.build_request(
        "POST", upstream.url("/json"), content=body(), headers={"x-a": BREAKS["bare-lf"]}
    )
    with pytest.raises(httpx.LocalProtocolError):
        await client.send(request)
    assert upstream.accepted == 0


# ------------------------------------------------------------------ the dispatcher's verdict


def single_route(*targets: tuple[str, Provider]) -> ResolvedRoute:
    specs = tuple(f"{name}/m" for name, _ in targets)
    resolved = tuple(Target(name, p, "m") for name, p in targets)
    return ResolvedRoute("r", "r", Route(targets=specs), resolved)


def dispatcher(client: httpx.AsyncClient, tmp_path: Path, environ: dict[str, str]) -> Dispatcher:
    pools = CredentialPools(CredentialResolver(tmp_path, environ))

    async def no_sleep(_: float) -> None:
        return None

    return Dispatcher(client, pools, RouteCursors(), sleep=no_sleep, rng=lambda: 0.0)


async def assert_refused_without_retry(
    d: Dispatcher, route: ResolvedRoute, caplog: pytest.LogCaptureFixture, secret: str
) -> UpstreamFailed:
    with (
        caplog.at_level(logging.ERROR, logger="modelgate.upstream"),
        pytest.raises(UpstreamFailed) as failed,
    ):
        await d.open(route, False, lambda target: Plan(Op.CHAT, b"{}"))
    err = failed.value
    assert err.status_code == 502
    assert "operators" in err.message
    assert secret not in err.message and "127.0.0.1" not in err.message
    logged = [r for r in caplog.records if "refused before sending" in r.getMessage()]
    assert [getattr(r, "header", None) for r in logged] == ["authorization"]
    assert all(secret not in r.getMessage() for r in caplog.records)
    return err


async def test_a_credential_with_a_line_break_fails_the_request_without_trying_others(
    upstream: Upstream,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {"BAD": "secret-0123\nX-Injected: 1", "GOOD": "good-secret-0123"}
    first = provider(
        "openai-compatible",
        upstream.url("/v1"),
        credentials=["env:BAD", "env:GOOD"],
        selection="fill-first",
        max_retries=3,
    )
    second = provider("openai-compatible", upstream.url("/v2"), credentials=["env:GOOD"])
    route = single_route(("first", first), ("second", second))
    await assert_refused_without_retry(
        dispatcher(client, tmp_path, environ), route, caplog, "secret-0123"
    )
    assert upstream.seen == []


async def test_an_oauth_token_with_a_line_break_goes_no_further(
    upstream: Upstream,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def token(ex: Exchange) -> None:
        body = json.dumps({"access_token": "tok\r\nX-Injected: 1", "expires_in": 3600})
        await ex.send(response_head(length=len(body)) + body.encode())

    upstream.routes["/token"] = token
    grant = {"token_url": upstream.url("/token"), "client_id": "c", "refresh_token": "env:R"}
    p = provider("openai-compatible", upstream.url("/v1"), credentials=[{"oauth2": grant}])
    route = single_route(("p", p))
    await assert_refused_without_retry(
        dispatcher(client, tmp_path, {"R": "refresh"}), route, caplog, "X-Injected"
    )
    assert [ex.path for ex in upstream.seen] == ["/token"]  # the token request, nothing more


async def test_a_client_header_with_a_line_break_is_the_clients_400(
    upstream: Upstream, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The allowlist refuses it first; should it ever let one by, the engine still holds.
    p = provider("anthropic", upstream.url(""), credentials=["env:K"], max_retries=3)
    forward = (Protocol.ANTHROPIC, {"anthropic-beta": f"x\n{INJECTED}"})
    d = dispatcher(client, tmp_path, {"K": "secret-0123"})
    with pytest.raises(BadRequest, match="anthropic-beta") as refused:
        await d.open(single_route(("p", p)), False, lambda t: Plan(Op.CHAT, b"{}"), forward)
    assert INJECTED not in refused.value.message
    assert upstream.seen == []
