"""Limits through the real server: gateways shared per limits store, Redis, fake upstream.

Every gateway here is a `modelgate serve` subprocess on loopback; Redis is a real
redis-server. Tests count requests instead of waiting for 60-second windows to slide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.limits_e2e.calls import chat, key_usage
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo
from tests.support.redis_server import RedisServer


# a gateway per limits store ------------------------------------------------------------
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
        gateway = GatewayProcess(policy.repo.path, tmp / "state", *args)
        try:
            yield Served(policy, gateway.start(), redis)
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
    "embed-openai": KeySpec(limits="{tpm: 1000, tokens_per_day: 1000}"),  # test_embeddings
    "embed-native": KeySpec(limits="{tpm: 1000, tokens_per_month: 1000}"),
    "embed-quota": KeySpec(limits="{tokens_per_day: 20}"),
    "no-usage": KeySpec(limits="{tpm: 100000, tokens_per_day: 100000}"),
    "large-answer": KeySpec(limits="{tpm: 100000, tokens_per_day: 100000}"),
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
