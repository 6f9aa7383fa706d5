"""create_limiter picks the backend; nothing secret reaches the status."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.limits.factory import create_limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.limits.redis_keys import describe_failure
from policies.models import Limits
from policies.scopes import key_scopes


async def test_without_redis_it_is_the_in_process_limiter(tmp_path: Path) -> None:
    limiter = create_limiter(None, tmp_path / "var", "fail-closed")
    assert isinstance(limiter, MemoryLimiter)
    await limiter.start()
    try:
        await limiter.settle(await limiter.admit(key_scopes("k", Limits(rpm=1)), 0), 5)
    finally:
        await limiter.close()
    assert (tmp_path / "var" / "usage.sqlite3").is_file()
    assert limiter.status() == {
        "store": "memory",
        "state": "ok",
        "mode": "fail-closed",
        "error": None,
    }


async def test_with_a_redis_url_it_is_the_redis_limiter(tmp_path: Path) -> None:
    limiter = create_limiter("redis://127.0.0.1:1/0", tmp_path, "fail-open")
    assert isinstance(limiter, RedisLimiter)
    assert limiter.status()["store"] == "redis"
    await limiter.close()  # never started: closing is still fine


def test_an_unknown_fail_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fail-open, fail-closed"):
        create_limiter(None, tmp_path, "fail-sometimes")


def test_failure_descriptions_hide_urls_and_passwords() -> None:
    text = describe_failure(
        ConnectionError("cannot reach redis://:hunter2@cache.internal:6379/0 (password=hunter2)")
    )
    assert "hunter2" not in text
    assert text.startswith("ConnectionError: cannot reach <redis-url>")
