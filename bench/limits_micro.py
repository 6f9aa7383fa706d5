"""CPU cost of one admission plus its settlement, per limiter backend.

    ./dev python bench/limits_micro.py                  # in-process limiter (budget: 50 us)
    ./dev python bench/limits_micro.py --redis-url redis://127.0.0.1:6379/0

Each case runs `await admit(...)` then `await settle(...)` in a loop on one event loop, with
the SQLite usage store attached (its writer thread included in the process CPU time), and
reports the best of several rounds in microseconds per request. The shadow table puts the
same admission side by side with shadow limits absent, present but never exceeded, and
present and exceeded by every request (the would-be refusal is recorded each time).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from gateway.limits.base import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from policies.models import Limits
from policies.scopes import Scope, key_scopes, scope_of

FULL = Limits(
    rpm=10**9,
    tpm=10**12,
    max_concurrency=10**6,
    tokens_per_day=10**15,
    tokens_per_month=10**15,
    usd_per_day=Decimal(10**9),
    usd_per_month=Decimal(10**9),
)
TEAM = Limits(rpm=10**9, tpm=10**12, usd_per_day=Decimal(10**9))
PARENT = Limits(usd_per_month=Decimal(10**9), max_concurrency=10**6)
TEAM_CASES: dict[str, Callable[[str], tuple[Scope, ...]]] = {
    "key alone (all limits, budgets)": lambda key: (scope_of("key", key, FULL),),
    "key + team + parent": lambda key: (
        scope_of("key", key, FULL),
        scope_of("team", "search", TEAM),
        scope_of("team", "org", PARENT),
    ),
}
"""Admission over more scopes: the issue's target is at most +10 us in memory."""

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


SHADOW_NEVER = Limits(
    rpm=10**9 - 1, tpm=10**12 - 1, max_concurrency=10**6 - 1, tokens_per_day=10**15 - 1
)
"""Stricter than FULL but never reached in a run: shadow limits present, nothing to record."""
SHADOW_ALWAYS = Limits(rpm=0, tokens_per_day=0)
"""Exceeded by every request: each admission records two would-be refusals."""


def _with_shadow(limits: Limits, shadow: Limits | None) -> Limits:
    return limits if shadow is None else limits.model_copy(update={"shadow": shadow})


def _shadow_case(shadow: Limits | None, teams: bool) -> Callable[[str], tuple[Scope, ...]]:
    def scopes_of(key: str) -> tuple[Scope, ...]:
        own = (scope_of("key", key, _with_shadow(FULL, shadow)),)
        if not teams:
            return own
        return (
            *own,
            scope_of("team", "search", _with_shadow(TEAM, shadow)),
            scope_of("team", "org", _with_shadow(PARENT, shadow)),
        )

    return scopes_of


SHADOW_VARIANTS = {"absent": None, "present": SHADOW_NEVER, "exceeded": SHADOW_ALWAYS}
SHADOW_ROWS = {"key alone (all limits)": False, "key + team + parent": True}


def _key_only(limits: Limits) -> Callable[[str], tuple[Scope, ...]]:
    return lambda key: key_scopes(key, limits)


async def one_round(
    limiter: Limiter, scopes_of: Callable[[str], tuple[Scope, ...]], n: int
) -> tuple[float, float]:
    """(CPU us, wall us) per admission + settlement; scope lists are compiled beforehand,
    as the policy snapshot does."""
    compiled = [scopes_of(f"key-{i}") for i in range(8)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        admission = await limiter.admit(compiled[i & 7], 250)
        await limiter.settle(admission, 300, 1200)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / n * 1e6, wall / n * 1e6


async def measure(limiter: Limiter, n: int, rounds: int) -> None:
    await limiter.start()
    try:
        cases = {name: _key_only(limits) for name, limits in CASES.items()}
        for name, scopes_of in {**cases, **TEAM_CASES}.items():
            await one_round(limiter, scopes_of, min(n, 1000))  # warm up
            results = [await one_round(limiter, scopes_of, n) for _ in range(rounds)]
            cpu = min(r[0] for r in results)
            wall = min(r[1] for r in results)
            print(f"  {name:34s} {cpu:8.2f} us CPU   {wall:8.2f} us wall")
        variants = "".join(f"{v:>16s}" for v in SHADOW_VARIANTS)
        print(f"  shadow limits, us CPU/wall per request {variants}")
        for name, teams in SHADOW_ROWS.items():
            cells = []
            for shadow in SHADOW_VARIANTS.values():
                scopes_of = _shadow_case(shadow, teams)
                await one_round(limiter, scopes_of, min(n, 1000))
                results = [await one_round(limiter, scopes_of, n) for _ in range(rounds)]
                cpu, wall = min(r[0] for r in results), min(r[1] for r in results)
                cells.append(f"{cpu:7.2f}/{wall:<7.2f}".rjust(16))
            print(f"    {name:37s}" + "".join(cells))
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
