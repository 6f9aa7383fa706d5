"""Redis going away and coming back: fail-open and fail-closed, logged once, self-healing."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import QuotaExhausted, RateLimited
from gateway.limits.base import LimiterUnavailable
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from policies.models import Limits
from policies.scopes import key_scopes
from tests.limits.conftest import LogRecords
from tests.support.redis_server import RedisServer, running_redis_server

from .test_redis import MakeLimiter

pytestmark = pytest.mark.redis

PASSWORD = "s3cret-redis-password"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, with a password (it must never show in status or logs)."""
    with running_redis_server(tmp_path / "redis", password=PASSWORD) as running:
        yield running


async def until_state(limiter: RedisLimiter, state: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while limiter.status()["state"] != state:
        assert time.monotonic() < deadline, f"still {limiter.status()}"
        await asyncio.sleep(0.02)


async def test_fail_open_keeps_serving_and_recovers(
    make_redis_limiter: MakeLimiter,
    server: RedisServer,
    store_path: Path,
    limits_log: LogRecords,
) -> None:
    limiter = make_redis_limiter(server.url, UsageStore(store_path))
    await limiter.start()
    limits = Limits(rpm=1, tokens_per_day=100)
    await limiter.settle(await limiter.admit(key_scopes("k", limits), 0), 30)

    server.stop()
    outage = [
        await limiter.admit(key_scopes("k", limits), 0) for _ in range(5)
    ]  # over rpm, unchecked
    assert all(a.degraded and a.headers == {} for a in outage)
    for admission in outage:
        await limiter.settle(admission, 20)  # recorded in the usage store meanwhile
    status = limiter.status()
    assert (status["store"], status["state"], status["mode"]) == ("redis", "degraded", "fail-open")
    assert status["error"]
    assert PASSWORD not in json.dumps(status)
    await asyncio.sleep(0.2)  # several failed probes
    warnings = limits_log.messages(logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "Redis unreachable" in warnings[0]
    assert PASSWORD not in warnings[0]

    server.start()  # back, and empty (nothing was persisted)
    await until_state(limiter, "ok")
    assert limiter.status()["error"] is None
    assert any("reachable again" in m for m in limits_log.messages(logging.INFO))
    assert len(limits_log.messages(logging.WARNING)) == 1
    # 30 before and 5 x 20 during the outage: raised from the usage store
    with pytest.raises(QuotaExhausted):
        await limiter.admit(key_scopes("k", limits), 0)
    assert (await limiter.fetch_usage("k", limits))["tokens_per_day"]["used"] == 130
    fresh = Limits(rpm=1)
    await limiter.admit(key_scopes("other", fresh), 0)
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("other", fresh), 0)


async def test_fail_closed_refuses_with_503_and_recovers(
    make_redis_limiter: MakeLimiter, server: RedisServer, limits_log: LogRecords
) -> None:
    limiter = make_redis_limiter(server.url, fail_mode="fail-closed")
    await limiter.start()
    limits = Limits(rpm=100)
    await limiter.admit(key_scopes("k", limits), 0)

    server.stop()
    for _ in range(3):
        with pytest.raises(LimiterUnavailable) as refused:
            await limiter.admit(key_scopes("k", limits), 0)
        assert refused.value.status_code == 503
        assert refused.value.headers["Retry-After"] == "1"
    assert (
        await limiter.admit(key_scopes("free", Limits()), 0)
    ).degraded is False  # no limits: no check
    status = limiter.status()
    assert (status["state"], status["mode"]) == ("degraded", "fail-closed")
    assert len(limits_log.messages(logging.WARNING)) == 1
    assert "refusing requests with 503" in limits_log.messages(logging.WARNING)[0]

    server.start()
    await until_state(limiter, "ok")
    admission = await limiter.admit(key_scopes("k", limits), 0)
    assert admission.headers["x-ratelimit-remaining-requests"] == "99"  # Redis came back empty


async def test_starting_while_redis_is_down_starts_degraded_then_heals(
    make_redis_limiter: MakeLimiter, server: RedisServer
) -> None:
    server.stop()
    limiter = make_redis_limiter(server.url)
    await limiter.start()
    assert limiter.status()["state"] == "degraded"
    assert (await limiter.admit(key_scopes("k", Limits(rpm=1)), 0)).degraded
    server.start()
    await until_state(limiter, "ok")
    await limiter.admit(key_scopes("k", Limits(rpm=1)), 0)
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", Limits(rpm=1)), 0)


async def test_a_settlement_during_an_outage_never_raises(
    make_redis_limiter: MakeLimiter, server: RedisServer
) -> None:
    limiter = make_redis_limiter(server.url)
    await limiter.start()
    admission = await limiter.admit(key_scopes("k", Limits(max_concurrency=1)), 0)
    server.stop()
    await limiter.settle(admission, 10)
    assert limiter.status()["state"] == "degraded"
