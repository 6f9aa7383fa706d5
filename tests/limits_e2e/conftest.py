"""Limits through the real server: policies with limited keys, bursts, usage and status reads.

Every gateway here is a `modelgate serve` subprocess on loopback; Redis is a real
redis-server. Tests count requests instead of waiting for 60-second windows to slide.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret, standard_policy
from tests.support.redis_server import RedisServer

PER_REQUEST = PROMPT_TOKENS + COMPLETION_TOKENS  # what the fake upstream reports: 18
CHAT_PATH = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]

PROVIDERS = """
providers:
  fake:                       # the fake upstream, OpenAI-compatible
    type: openai-compatible
    base_url: {url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 1
  fake-anthropic:             # the same fake, spoken to as Anthropic
    type: anthropic
    base_url: {url}
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 1
"""
ROUTES = """
routes:
  gpt-4o-mini:
    targets: [fake/upstream-mini]
  claude-fake:
    targets: [fake-anthropic/claude-upstream]
"""


@dataclass(frozen=True)
class KeySpec:
    """One client key of a test policy; `limits` is a YAML flow mapping like "{rpm: 10}"."""

    tier: str | None = None
    limits: str | None = None


def keys_yaml(secrets: dict[str, str], specs: dict[str, KeySpec], admin_secret: str) -> str:
    lines = ["keys:"]
    for key_id, spec in specs.items():
        lines += [f"  - id: {key_id}", f"    hash: {hash_of(secrets[key_id])}"]
        if spec.tier:
            lines.append(f"    tier: {spec.tier}")
        if spec.limits:
            lines.append(f"    limits: {spec.limits}")
    lines += ["admins:", "  - id: ops", f"    hash: {hash_of(admin_secret)}", ""]
    return "\n".join(lines)


@dataclass
class LimitsPolicy:
    """A policy repository whose keys and limits tests rewrite by commit."""

    repo: PolicyRepo
    specs: dict[str, KeySpec]
    limits_yaml: str
    secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, path: Path, upstream_url: str, specs: dict[str, KeySpec], limits_yaml: str = ""
    ) -> LimitsPolicy:
        repo = PolicyRepo(path)
        # standard_policy gives the admin token; providers, routes and keys are ours.
        secrets = standard_policy(repo, upstream_url)
        policy = cls(repo, dict(specs), limits_yaml or "default: {}\ntiers: {}\n", secrets)
        for key_id in specs:
            policy.secrets[key_id] = new_secret()
        repo.write("providers.yaml", PROVIDERS.format(url=upstream_url))
        repo.write("routes.yaml", ROUTES)
        policy.commit("limited keys")
        return policy

    def commit(self, message: str) -> str:
        self.repo.write("limits.yaml", self.limits_yaml)
        self.repo.write("keys.yaml", keys_yaml(self.secrets, self.specs, self.secrets["admin"]))
        return self.repo.commit(message)

    def set_key(self, key_id: str, spec: KeySpec) -> str:
        """Change (or add) one key's limits by commit; returns the commit."""
        self.specs[key_id] = spec
        if key_id not in self.secrets:
            self.secrets[key_id] = new_secret()
        return self.commit(f"limits of {key_id}")

    @property
    def admin(self) -> str:
        return self.secrets["admin"]


# requests ----------------------------------------------------------------------------------
def chat_body(content: str = "hi", *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content}],
    }
    if stream:
        body["stream"] = True
    return body


def padded_body(size: int, *, stream: bool = False) -> dict[str, Any]:
    """A chat body of exactly `size` bytes as JSON (the gateway estimates size / 4 tokens)."""
    bare = len(httpx.Request("POST", "http://x", json=chat_body("", stream=stream)).content)
    body = chat_body("x" * (size - bare), stream=stream)
    assert len(httpx.Request("POST", "http://x", json=body).content) == size
    return body


def chat(url: str, secret: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        url + CHAT_PATH,
        json=body or chat_body(),
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )


def burst(urls: list[str], secret: str, count: int) -> list[httpx.Response]:
    """`count` chat requests at once, spread round-robin over `urls`."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        urls[i % len(urls)] + CHAT_PATH,
                        json=chat_body(),
                        headers={"authorization": f"Bearer {secret}"},
                    )
                    for i in range(count)
                )
            )

    return asyncio.run(run())


def statuses(responses: Iterable[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def seconds(duration: str) -> float:
    """A Go-style duration as x-ratelimit-reset-* carry it (250ms, 6.5s, 1m0s) in seconds."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    total, number = 0.0, ""
    for char in duration:
        if char in "hms":
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            number += char
    assert not number, duration
    return total


def assert_request_trio(response: httpx.Response, limit: int, remaining: int) -> None:
    headers = response.headers
    assert headers["x-ratelimit-limit-requests"] == str(limit)
    assert headers["x-ratelimit-remaining-requests"] == str(remaining)
    assert 0 < seconds(headers["x-ratelimit-reset-requests"]) <= 60


def assert_refused(
    response: httpx.Response, code: str = "rate_limit_exceeded", unit: str | None = "requests"
) -> None:
    """A 429 in OpenAI's shape with Retry-After and the x-ratelimit trio of `unit` (if any)."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if code == "insufficient_quota":
        assert error["type"] == "insufficient_quota"
    assert int(response.headers["retry-after"]) >= 1
    for name in ("limit", "remaining", "reset") if unit else ():
        assert f"x-ratelimit-{name}-{unit}" in response.headers, name


def seconds_to_midnight() -> float:
    """Seconds until the next 00:00 UTC, when day quotas reset."""
    return 86_400 - time.time() % 86_400


# operations endpoints ----------------------------------------------------------------------
def key_usage(url: str, admin: str, key_id: str) -> dict[str, Any]:
    response = httpx.get(
        url + "/admin/api/usage",
        params={"key": key_id},
        headers={"authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (report,) = response.json()["keys"]
    assert isinstance(report, dict)
    return report


def limits_status(url: str, admin: str) -> dict[str, Any]:
    response = httpx.get(
        url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    status = response.json()["limits"]
    assert isinstance(status, dict)
    return status


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_applied(url: str, admin: str, commit: str) -> None:
    def applied() -> bool:
        response = httpx.get(
            url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"}, timeout=10
        )
        return bool(response.json()["policy"]["commit"] == commit)

    wait_for(applied, f"policy {commit[:12]} to apply")


# a gateway per module ----------------------------------------------------------------------
@dataclass
class Served:
    """A gateway serving a LimitsPolicy (in-process limits, or Redis when `redis` is set)."""

    policy: LimitsPolicy
    gateway: GatewayProcess
    redis: RedisServer | None = None

    @property
    def url(self) -> str:
        return self.gateway.url

    def secret(self, key_id: str) -> str:
        return self.policy.secrets[key_id]

    def chat(self, key_id: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return chat(self.url, self.secret(key_id), body)

    def usage(self, key_id: str) -> dict[str, Any]:
        return key_usage(self.url, self.policy.admin, key_id)


@contextmanager
def serving(
    store: str,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
    specs: dict[str, KeySpec],
    limits_yaml: str = "",
) -> Iterator[Served]:
    """store: "memory" or "redis" (a redis-server of its own)."""
    tmp = tmp_path_factory.mktemp(store)
    policy = LimitsPolicy.create(tmp / "policy", upstream.url, specs, limits_yaml)
    redis = RedisServer(tmp / "redis").start() if store == "redis" else None
    try:
        args = ("--redis-url", redis.url) if redis else ()
        gateway = GatewayProcess(policy.repo.path, tmp / "state", *args).start()
        try:
            yield Served(policy, gateway, redis)
        finally:
            gateway.stop()
    finally:
        if redis:
            redis.stop()


# fixtures ----------------------------------------------------------------------------------
SHARED_TIERS = """
default: {tokens_per_month: 5000}
tiers:
  gold: {rpm: 6, tpm: 100000, tokens_per_day: 1000}
"""
ONE_AT_A_TIME = KeySpec(limits="{max_concurrency: 1, tokens_per_day: 1000}")
SHARED_KEYS = {
    "burst": KeySpec(limits="{rpm: 10}"),  # test_exactness
    "rpm5": KeySpec(limits="{rpm: 5}"),  # test_limit_kinds
    "tpm": KeySpec(limits="{tpm: 250}"),
    "tpm-held": KeySpec(limits="{tpm: 250}"),
    "conc": KeySpec(limits="{max_concurrency: 2}"),
    "day": KeySpec(limits="{tokens_per_day: 30}"),
    "month": KeySpec(limits="{tokens_per_month: 18}"),
    "stream-day": KeySpec(limits="{tokens_per_day: 18}"),
    "gold": KeySpec(tier="gold"),
    "gold-rpm2": KeySpec(tier="gold", limits="{rpm: 2}"),
    "plain": KeySpec(),
    "plain-tpm": KeySpec(limits="{tpm: 5000}"),
    "changing": KeySpec(limits="{rpm: 10}"),
    "leaver": ONE_AT_A_TIME,  # test_stream_settlement
    "broken": ONE_AT_A_TIME,
    "openai-leaver": ONE_AT_A_TIME,
}
"""Keys of the shared gateways; each test uses keys of its own, so counts never mix."""


@pytest.fixture(scope="session")
def shared_upstream() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session", params=["memory", "redis"])
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shared_upstream: FakeUpstream,
) -> Iterator[Served]:
    """One gateway per limits store, shared by the tests of every module that asks."""
    with serving(
        request.param, tmp_path_factory, shared_upstream, SHARED_KEYS, SHARED_TIERS
    ) as served:
        yield served


@pytest.fixture
def upstream(shared_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The module's fake upstream, reset and released after each test."""
    shared_upstream.reset()
    yield shared_upstream
    shared_upstream.hold_stream_after_first_chunk = False
    shared_upstream.release_stream.set()
    shared_upstream.stream_started.clear()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways on a repository (each with its own state dir unless given one)."""
    started: list[GatewayProcess] = []

    def start(
        repo: PolicyRepo, *args: str, state_dir: Path | None = None, **kwargs: Any
    ) -> GatewayProcess:
        state = state_dir or tmp_path / f"state-{len(started)}"
        gateway = GatewayProcess(repo.path, state, *args, **kwargs)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()
