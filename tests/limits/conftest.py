"""Fixtures for the limiter tests: a fake clock, a usage store, a real redis-server."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.limits.base import FailMode
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from tests.support.fake_clock import FakeClock
from tests.support.redis_server import RedisServer, running_redis_server

NOON = dt.datetime(2025, 3, 14, 12, 0, 0, 250_000, tzinfo=dt.UTC)
"""A quarter second into a whole second, so window arithmetic is visible in headers."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "usage.sqlite3"


@pytest.fixture
def store(store_path: Path) -> Iterator[UsageStore]:
    """A usage store that writes only when flushed (the writer waits an hour)."""
    usage = UsageStore(store_path, flush_interval_s=3600)
    yield usage
    usage.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server per test module; `redis_url` empties it for each test."""
    with running_redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
async def make_redis_limiter(
    clock: FakeClock,
) -> AsyncIterator[Callable[..., RedisLimiter]]:
    """Started RedisLimiters on the fake clock, closed after the test."""
    made: list[RedisLimiter] = []

    def make(
        url: str,
        store: UsageStore | None = None,
        fail_mode: FailMode = "fail-open",
        **options: float,
    ) -> RedisLimiter:
        options.setdefault("probe_interval_s", 0.05)
        limiter = RedisLimiter(url, store, fail_mode=fail_mode, clock=clock, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


class LogRecords(logging.Handler):
    """Records of one logger, whatever the propagation settings of the process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def limits_log() -> Iterator[LogRecords]:
    logger = logging.getLogger("modelgate.limits")
    handler = LogRecords()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)
