"""Fixtures for the teams tests: the limiter fixtures (fake clock, usage store, redis-server)."""

from tests.limits.conftest import (
    clock,
    make_redis_limiter,
    redis_server,
    redis_url,
    store,
    store_path,
)

__all__ = ["clock", "make_redis_limiter", "redis_server", "redis_url", "store", "store_path"]
