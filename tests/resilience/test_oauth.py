"""TokenSource against a real loopback token endpoint: grants, caching, single flight, failures."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from credentials.oauth import TokenError, TokenSource
from credentials.pool import CredentialResolver
from credentials.refs import CredentialUnavailable
from gateway.upstream.transport import create_http_client
from policies.models import TokenCredential
from tests.support.fake_token_server import FakeTokenServer

CLIENT_SECRET = "client-secret-0123456789"
REFRESH_TOKEN = "refresh-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTokenServer]:
    token_server = FakeTokenServer().start()
    yield token_server
    token_server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = create_http_client()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def refresh_source(
    server: FakeTokenServer, name: str, tmp_path: Path, clock: Clock, **behaviour: object
) -> TokenSource:
    server.behave(name, **behaviour)
    (tmp_path / "refresh").write_text(REFRESH_TOKEN + "\n")
    spec = TokenCredential.model_validate(
        {
            "oauth2": {
                "token_url": server.url(name),
                "client_id": "gateway",
                "client_secret": "env:SECRET",
                "refresh_token": "file:refresh",
                "scope": "model.read",
            }
        }
    )
    resolver = CredentialResolver(tmp_path, {"SECRET": CLIENT_SECRET})
    return TokenSource(spec, lambda ref: resolver.resolve(ref, clock()), clock=clock)


async def test_refresh_token_grant_and_cache(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "grant", tmp_path, clock)
    assert await source.access_token(http) == "tok-grant-1"
    assert await source.access_token(http) == "tok-grant-1"
    (issued,) = [i for i in server.issued if i.name == "grant"]
    assert issued.form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "gateway",
        "client_secret": CLIENT_SECRET,
        "scope": "model.read",
    }
    assert source.refreshes == 1


async def test_refreshed_before_expiry(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "expiry", tmp_path, clock, expires_in=3600)
    assert await source.access_token(http) == "tok-expiry-1"
    clock.now += 3539  # still more than 60 s left
    assert await source.access_token(http) == "tok-expiry-1"
    clock.now += 2  # 59 s left: refresh early
    assert await source.access_token(http) == "tok-expiry-2"
    assert source.expires_in() == pytest.approx(3600)


async def test_a_short_lived_token_is_refreshed_at_half_its_life(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "short", tmp_path, clock, expires_in=10)
    assert await source.access_token(http) == "tok-short-1"
    clock.now += 4.9
    assert await source.access_token(http) == "tok-short-1"
    clock.now += 0.2
    assert await source.access_token(http) == "tok-short-2"


async def test_concurrent_callers_share_one_refresh(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "crowd", tmp_path, clock, delay_s=0.2)
    tokens = await asyncio.gather(*(source.access_token(http) for _ in range(20)))
    assert set(tokens) == {"tok-crowd-1"}
    assert server.count("crowd") == 1


async def test_a_caller_that_leaves_does_not_cancel_the_shared_refresh(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "leaver", tmp_path, clock, delay_s=0.2)
    leaver = asyncio.ensure_future(source.access_token(http))
    stayer = asyncio.ensure_future(source.access_token(http))
    await asyncio.sleep(0.05)
    leaver.cancel()
    assert await stayer == "tok-leaver-1"
    assert server.count("leaver") == 1


FAILURES = [
    (400, "invalid_grant", True),
    (401, "invalid_client", True),
    (500, "server_error", False),
    (503, "temporarily_unavailable", False),
]


@pytest.mark.parametrize(("status", "error", "refused"), FAILURES)
async def test_failures_say_whether_the_grant_was_refused(
    server: FakeTokenServer,
    http: httpx.AsyncClient,
    tmp_path: Path,
    clock: Clock,
    status: int,
    error: str,
    refused: bool,
) -> None:
    name = f"fail-{status}"
    source = refresh_source(server, name, tmp_path, clock, status=status, error=error)
    results = await asyncio.gather(
        *(source.access_token(http) for _ in range(5)), return_exceptions=True
    )
    assert server.count(name) == 1, "failures are shared by the callers waiting for them"
    assert all(isinstance(r, TokenError) for r in results)
    failure = results[0]
    assert isinstance(failure, TokenError)
    assert failure.refused is refused
    assert f"{status} {error}" in failure.reason
    assert REFRESH_TOKEN not in failure.reason and CLIENT_SECRET not in failure.reason


async def test_an_unreachable_endpoint_is_a_transient_failure(
    http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    spec = TokenCredential.model_validate(
        {
            "oauth2": {
                "token_url": f"http://127.0.0.1:{closed}/t",
                "client_id": "c",
                "refresh_token": "env:R",
            }
        }
    )
    source = TokenSource(spec, lambda ref: "refresh-value-0123456789", clock=clock)
    with pytest.raises(TokenError) as caught:
        await source.access_token(http)
    assert not caught.value.refused
    assert "could not be reached" in caught.value.reason


async def test_a_rotated_refresh_token_is_used_until_the_file_changes(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    source = refresh_source(server, "rotate", tmp_path, clock, rotate_refresh_token=True)
    await source.access_token(http)
    source.invalidate()
    await source.access_token(http)
    (tmp_path / "refresh").write_text("operator-wrote-a-new-one-0123")
    clock.now += 1.1  # files are re-read at most once per second
    source.invalidate()
    await source.access_token(http)
    sent = [i.form["refresh_token"] for i in server.issued if i.name == "rotate"]
    assert sent == [REFRESH_TOKEN, "rotated-rotate-1", "operator-wrote-a-new-one-0123"]


def service_account(tmp_path: Path, token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "client_email": "gateway@project.iam.gserviceaccount.com",
        "private_key_id": "key-17",
        "private_key": pem,
        "token_uri": token_uri,
    }
    (tmp_path / "sa.json").write_text(json.dumps(account))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


async def test_service_account_jwt_bearer_grant(
    server: FakeTokenServer, http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    server.public_keys["sa"] = service_account(tmp_path, server.url("sa"))
    spec = TokenCredential.model_validate(
        {"google_service_account": "file:sa.json", "scopes": ["https://x/a", "https://x/b"]}
    )
    resolver = CredentialResolver(tmp_path, {})
    source = TokenSource(spec, lambda ref: resolver.resolve(ref, clock()), clock=clock)
    assert await source.access_token(http) == "tok-sa-1"
    (issued,) = [i for i in server.issued if i.name == "sa"]
    assert issued.claims is not None and issued.jwt_headers is not None
    assert issued.claims["iss"] == "gateway@project.iam.gserviceaccount.com"
    assert issued.claims["scope"] == "https://x/a https://x/b"
    assert issued.claims["exp"] - issued.claims["iat"] == 3600
    assert issued.jwt_headers == {"alg": "RS256", "typ": "JWT", "kid": "key-17"}


async def test_a_file_that_is_no_service_account_is_unavailable(
    http: httpx.AsyncClient, tmp_path: Path, clock: Clock
) -> None:
    (tmp_path / "sa.json").write_text('{"client_email": "x@y"}')
    spec = TokenCredential.model_validate({"google_service_account": "file:sa.json"})
    resolver = CredentialResolver(tmp_path, {})
    source = TokenSource(spec, lambda ref: resolver.resolve(ref, clock()), clock=clock)
    with pytest.raises(CredentialUnavailable) as caught:
        await source.access_token(http)
    assert "client_email and private_key" in caught.value.reason
