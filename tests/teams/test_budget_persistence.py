"""USD budgets survive restarts (of the gateway, and of Redis), a kill -9 within the usage
store's documented loss, and are shared by two gateways on one Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.errors import QuotaExhausted
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from policies.models import Limits
from tests.support.fake_clock import FakeClock
from tests.support.redis_server import RedisServer
from tests.teams.scopes import team_scopes, usd

ROOT = Path(__file__).resolve().parents[2]
SEARCH = Limits(usd_per_day=Decimal(3))
ORG = Limits(usd_per_month=Decimal(10))
SCOPES = team_scopes("k", search=SEARCH, org=ORG)


async def test_spend_survives_a_restart_of_the_gateway(store_path: Path, clock: FakeClock) -> None:
    before = MemoryLimiter(UsageStore(store_path), clock=clock)
    await before.start()
    await before.settle(await before.admit(SCOPES, 0), 100, usd(2))
    await before.settle(await before.admit(SCOPES, 0), 100, usd(1.25))
    await before.close()

    after = MemoryLimiter(UsageStore(store_path), clock=clock)
    await after.start()
    try:
        with pytest.raises(QuotaExhausted, match=r"team 'search' is spent \(\$3.25 of \$3\)"):
            await after.admit(SCOPES, 0)
        org = team_scopes("other", org=ORG)
        org = (org[0], org[2])
        await after.settle(await after.admit(org, 0), 1, usd(6.75))  # org: $10 of $10
        with pytest.raises(QuotaExhausted, match=r"monthly budget of team 'org'"):
            await after.admit(org, 0)
    finally:
        await after.close()


@pytest.mark.redis
async def test_spend_survives_redis_restarting_empty(
    tmp_path: Path, store_path: Path, clock: FakeClock
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        limiter = RedisLimiter(
            server.url, UsageStore(store_path), clock=clock, probe_interval_s=0.05
        )
        await limiter.start()
        await limiter.settle(await limiter.admit(SCOPES, 0), 100, usd(3))
        await limiter.close()
        server.stop()
        server.start()  # empty: nothing is persisted by this redis-server
        again = RedisLimiter(server.url, UsageStore(store_path), clock=clock)
        await again.start()  # raises Redis totals to what the usage store holds
        try:
            with pytest.raises(QuotaExhausted, match=r"team 'search' is spent \(\$3 of \$3\)"):
                await again.admit(SCOPES, 0)
        finally:
            await again.close()
    finally:
        server.stop()


@pytest.mark.redis
async def test_a_team_budget_is_shared_by_two_gateways_on_one_redis(
    redis_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Each gateway has its own state directory; Redis holds the spend of record."""
    gateways = [
        RedisLimiter(redis_url, UsageStore(tmp_path / f"g{i}" / "usage.sqlite3"), clock=clock)
        for i in range(2)
    ]
    for gateway in gateways:
        await gateway.start()
    try:
        one, two = gateways
        await one.settle(await one.admit(team_scopes("a", search=SEARCH), 0), 10, usd(1.5))
        await two.settle(await two.admit(team_scopes("b", search=SEARCH), 0), 10, usd(1.5))
        for gateway, key in ((one, "a"), (two, "b"), (two, "c")):
            with pytest.raises(QuotaExhausted, match=r"team 'search' is spent \(\$3 of \$3\)"):
                await gateway.admit(team_scopes(key, search=SEARCH), 0)
        usage = await one.fetch_usage("team:search", SEARCH)
        assert usage["tokens_per_day"]["used"] == 20
        assert usage["tokens_per_day"]["requests"] == 2
    finally:
        for gateway in gateways:
            await gateway.close()


_SPENDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from gateway.limits.memory import MemoryLimiter
    from gateway.usage.store import UsageStore
    from tests.teams.test_budget_persistence import SCOPES

    async def main() -> None:
        limiter = MemoryLimiter(UsageStore(Path(sys.argv[1]), flush_interval_s=0.05))
        await limiter.start()
        spent = 0
        while True:  # a cent per request, reported as it goes, until killed
            await limiter.settle(await limiter.admit(SCOPES, 0), 1, 10_000)
            spent += 10_000
            print(time.monotonic(), spent, flush=True)
            await asyncio.sleep(0.01)

    asyncio.run(main())
    """
)


def test_a_killed_gateway_loses_at_most_about_a_second_of_spend(store_path: Path) -> None:
    """The documented loss: spend not yet written by the usage store's batch (<= ~1 s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _SPENDER, str(store_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    progress: list[tuple[float, int]] = []
    assert child.stdout is not None
    try:
        while len(progress) < 40:
            line = child.stdout.readline()
            assert line, "the spender exited early"
            when, spent = line.split()
            progress.append((float(when), int(spent)))
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    store = UsageStore(store_path)
    store.open()
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime())
        totals = store.load_totals(day, day[:7]).get("team:search")
    finally:
        store.close()
    persisted = totals.day_cost_micros if totals else 0
    recorded = progress[-1][1]
    assert persisted > 0
    lost_since = min((when for when, spent in progress if spent > persisted), default=killed_at)
    assert killed_at - lost_since <= 1.5, (persisted, recorded)
