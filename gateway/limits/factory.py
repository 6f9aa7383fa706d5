"""Build the limiter the settings ask for."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.limits.base import FAIL_MODES, Clock, Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.usage.store import DEFAULT_FILE, UsageStore


def create_limiter(
    redis_url: str | None, state_dir: Path, fail_mode: str, clock: Clock = time.time
) -> Limiter:
    """Redis-backed when `redis_url` is set, else in-process; usage goes to state_dir.
    `clock` (epoch seconds) decides windows and UTC days; tests pass a fake one.

    Nothing connects or opens files until `await limiter.start()`.
    """
    if fail_mode not in FAIL_MODES:
        raise ValueError(
            f"limits fail mode must be one of {', '.join(FAIL_MODES)}, not {fail_mode!r}"
        )
    store = UsageStore(Path(state_dir) / DEFAULT_FILE)
    if redis_url:
        from gateway.limits.redis import RedisLimiter  # the redis client loads only when used

        return RedisLimiter(redis_url, store, fail_mode=fail_mode, clock=clock)
    return MemoryLimiter(store, fail_mode=fail_mode, clock=clock)
