"""CPU cost of one admission plus its settlement, per limiter backend.

    ./dev python bench/limits_micro.py                  # in-process limiter (budget: 50 us)
    ./dev python bench/limits_micro.py --redis-url redis://127.0.0.1:6379/0

Each case runs `await admit(...)` then `await settle(...)` in a loop on one event loop, with
the SQLite usage store attached (its writer thread included in the process CPU time), and
reports the best of several rounds in microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.limits.base import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from policies.models import Limits

CASES = {
    "no limits (fast path)": Limits(),
    "rpm only": Limits(rpm=10**9),
    "rpm+tpm+concurrency+day+month": Limits(
        rpm=10**9,
        tpm=10**12,
        max_concurrency=10**6,
        tokens_per_day=10**15,
        tokens_per_month=10**15,
    ),
}


async def one_round(limiter: Limiter, limits: Limits, n: int) -> tuple[float, float]:
    """(CPU us, wall us) per admission + settlement."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        admission = await limiter.admit(f"key-{i & 7}", limits, 250)
        await limiter.settle(admission, 300)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / n * 1e6, wall / n * 1e6


async def measure(limiter: Limiter, n: int, rounds: int) -> None:
    await limiter.start()
    try:
        for name, limits in CASES.items():
            await one_round(limiter, limits, min(n, 1000))  # warm up
            results = [await one_round(limiter, limits, n) for _ in range(rounds)]
            cpu = min(r[0] for r in results)
            wall = min(r[1] for r in results)
            print(f"  {name:32s} {cpu:8.2f} us CPU   {wall:8.2f} us wall")
    finally:
        await limiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", help="also measure the Redis limiter against this server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = UsageStore(Path(tmp) / "usage.sqlite3")
        print(f"in-process limiter, {args.requests} requests x {args.rounds} rounds (best):")
        asyncio.run(measure(MemoryLimiter(store), args.requests, args.rounds))
        if args.redis_url:
            n = max(1, args.requests // 20)
            store = UsageStore(Path(tmp) / "usage-redis.sqlite3")
            print(f"Redis limiter, {n} requests x {args.rounds} rounds (best):")
            asyncio.run(measure(RedisLimiter(args.redis_url, store), n, args.rounds))


if __name__ == "__main__":
    main()
