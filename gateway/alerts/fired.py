"""The ledger of alerts already fired: each (scope, limit, period, threshold) fires once.

With Redis, `SET modelgate:alert:<key> 1 NX EX <seconds>`: the one worker, of any gateway on
that Redis, whose SET succeeds fires; the key expires a day after its period. Without
Redis (one worker per gateway: --workers > 1 needs Redis), a table in the state directory's
alerts.sqlite3, `INSERT OR IGNORE`: a restart does not fire again what already fired. Both
are asked only when this process sees a threshold reached for the first time (the watcher
remembers what it has seen), so the request path never waits for them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Protocol

KEY_PREFIX = "modelgate:alert:"
KEEP_AFTER_PERIOD_S = 86_400
"""A fired mark outlives its period by a day (clock skew between gateways)."""
ALERTS_FILE = "alerts.sqlite3"


class FiredLedger(Protocol):
    async def claim(self, key: str, ttl_s: float) -> bool:
        """True for the one caller that fires `key`; False when it has fired already.
        The mark is kept `ttl_s` (until a day after the period's end)."""
        ...

    async def close(self) -> None: ...


class RedisLedger:
    def __init__(self, redis_url: str, timeout_s: float = 2.0) -> None:
        import redis.asyncio as aioredis  # loaded only by gateways that share Redis

        self._redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def claim(self, key: str, ttl_s: float) -> bool:
        won = await self._redis.set(KEY_PREFIX + key, b"1", nx=True, ex=max(1, int(ttl_s)))
        return bool(won)

    async def close(self) -> None:
        await self._redis.aclose()


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fired ("
    " key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
)


class SqliteLedger:
    """Claims are rare (a threshold reached), so each opens the file on a thread."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def claim(self, key: str, ttl_s: float) -> bool:
        return await asyncio.to_thread(self._claim, key, time.time() + ttl_s)

    def _claim(self, key: str, expires_at: float) -> bool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self._path, timeout=5.0) as db:  # commits on leaving
            db.execute(_SCHEMA)
            db.execute(
                "DELETE FROM fired WHERE expires_at < ?", (time.time(),)
            )  # marks of past periods
            cursor = db.execute(
                "INSERT OR IGNORE INTO fired (key, expires_at) VALUES (?, ?)", (key, expires_at)
            )
            won = cursor.rowcount == 1
        db.close()
        return won

    async def close(self) -> None:
        return None


def create_ledger(redis_url: str | None, state_dir: Path) -> FiredLedger:
    if redis_url:
        return RedisLedger(redis_url)
    return SqliteLedger(state_dir / ALERTS_FILE)
