"""Shadow limits on both limiters: a fake clock, a real redis-server per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from gateway.limits.base import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from tests.limits.conftest import clock, make_redis_limiter, redis_server, redis_url
from tests.support.fake_clock import FakeClock

__all__ = ["clock", "make_redis_limiter", "redis_server", "redis_url"]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def new_limiter(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[Callable[[], Limiter]]:
    """Makes started limiters of one backend; two Redis ones share one redis-server."""
    made: list[Limiter] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""

    def make() -> Limiter:
        limiter: Limiter = (
            RedisLimiter(url, None, clock=clock, probe_interval_s=0.05)
            if url
            else MemoryLimiter(None, clock=clock)
        )
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
