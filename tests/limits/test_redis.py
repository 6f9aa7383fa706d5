"""The Redis limiter against a real redis-server: exact across instances and processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from gateway.errors import QuotaExhausted, RateLimited
from gateway.limits.base import Admission
from gateway.limits.redis import RedisLimiter
from gateway.usage.store import UsageStore
from policies.models import Limits
from policies.scopes import key_scopes
from tests.support.fake_clock import FakeClock

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
MakeLimiter = Callable[..., RedisLimiter]


async def started(make: MakeLimiter, url: str, store: UsageStore | None = None) -> RedisLimiter:
    limiter = make(url, store)
    await limiter.start()
    return limiter


async def admitted(limiters: list[RedisLimiter], limits: Limits, n: int, key: str = "k") -> int:
    """How many of n simultaneous admissions, spread over the limiters, got through."""
    results = await asyncio.gather(
        *(limiters[i % len(limiters)].admit(key_scopes(key, limits), 1) for i in range(n)),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, RateLimited):
            raise result
    return sum(isinstance(r, Admission) for r in results)


async def test_twenty_simultaneous_requests_through_two_instances_let_exactly_10_through(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    first = await started(make_redis_limiter, redis_url)
    second = await started(make_redis_limiter, redis_url)
    assert await admitted([first, second], Limits(rpm=10), 20) == 10
    assert await admitted([first, second], Limits(rpm=10), 4) == 0


_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.errors import RateLimited
    from gateway.limits.redis import RedisLimiter
    from policies.models import Limits
    from policies.scopes import key_scopes

    async def main() -> None:
        limiter = RedisLimiter(sys.argv[1], None)
        await limiter.start()
        print("ready", flush=True)
        sys.stdin.readline()  # "go": both processes fire at the same moment
        results = await asyncio.gather(
            *(limiter.admit(key_scopes("shared", Limits(rpm=10)), 1) for _ in range(10)),
            return_exceptions=True,
        )
        refused = sum(isinstance(r, RateLimited) for r in results)
        print(sum(not isinstance(r, BaseException) for r in results), refused)
        await limiter.close()

    asyncio.run(main())
    """
)


def test_twenty_simultaneous_requests_from_two_processes_let_exactly_10_through(
    redis_url: str,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [w.communicate(timeout=30)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]
    counts = [tuple(map(int, out.split())) for out in outputs]
    assert sum(ok for ok, _ in counts) == 10
    assert sum(refused for _, refused in counts) == 10


async def test_rpm_refusal_and_success_headers(
    make_redis_limiter: MakeLimiter, redis_url: str, clock: FakeClock
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(rpm=2, tpm=1000)
    first = await limiter.admit(key_scopes("k", limits), 100)
    assert first.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "59.75s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "59.75s",
    }
    clock.advance(10)
    await limiter.admit(key_scopes("k", limits), 0)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(key_scopes("k", limits), 0)
    assert type(refused.value) is RateLimited
    assert refused.value.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "49.75s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "49.75s",
        "Retry-After": "50",
    }


async def test_the_window_slides_per_second(
    make_redis_limiter: MakeLimiter, redis_url: str, clock: FakeClock
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(rpm=3)
    for _ in range(3):
        await limiter.admit(key_scopes("k", limits), 0)
        clock.advance(20)
    clock.advance(-0.5)  # 12:00:59.75
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", limits), 0)
    clock.advance(0.5)  # 12:01:00.25: the request of 12:00:00 has slid out
    await limiter.admit(key_scopes("k", limits), 0)
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", limits), 0)


async def test_tpm_reserves_the_estimate_and_settles_to_the_real_figure(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(tpm=1000)
    first = await limiter.admit(key_scopes("k", limits), 600)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(key_scopes("k", limits), 500)
    assert refused.value.headers["x-ratelimit-remaining-tokens"] == "400"
    await limiter.settle(first, 100)
    assert (await limiter.fetch_usage("k", limits))["tpm"]["used"] == 100
    second = await limiter.admit(key_scopes("k", limits), 500)
    await limiter.settle(second, 900)
    assert (await limiter.fetch_usage("k", limits))["tpm"]["used"] == 1000
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", limits), 1)


async def test_concurrency_is_released_on_settle(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    first = await started(make_redis_limiter, redis_url)
    second = await started(make_redis_limiter, redis_url)
    limits = Limits(max_concurrency=2)
    held = await first.admit(key_scopes("k", limits), 0)
    await second.admit(key_scopes("k", limits), 0)
    with pytest.raises(RateLimited) as refused:
        await first.admit(key_scopes("k", limits), 0)
    assert refused.value.headers["Retry-After"] == "1"
    await first.settle(held, 5)
    await first.settle(held, 5)  # idempotent
    await second.admit(key_scopes("k", limits), 0)
    with pytest.raises(RateLimited):
        await second.admit(key_scopes("k", limits), 0)


async def test_the_slot_of_a_worker_that_died_frees_when_its_lease_runs_out(
    make_redis_limiter: MakeLimiter, redis_url: str, clock: FakeClock
) -> None:
    limiter = make_redis_limiter(redis_url, lease_s=30)
    await limiter.start()
    limits = Limits(max_concurrency=1)
    await limiter.admit(key_scopes("k", limits), 0)  # never settled: its worker "crashed"
    clock.advance(29)
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", limits), 0)
    clock.advance(1.5)
    await limiter.admit(key_scopes("k", limits), 0)


async def test_a_finished_response_counts_before_the_next_admission(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    first = await started(make_redis_limiter, redis_url)
    second = await started(make_redis_limiter, redis_url)
    limits = Limits(tokens_per_day=100)
    await first.settle(await first.admit(key_scopes("k", limits), 10), 100)
    with pytest.raises(QuotaExhausted) as refused:
        await second.admit(key_scopes("k", limits), 10)
    assert refused.value.code == "insufficient_quota"


async def test_day_and_month_quotas_roll_over_at_utc_boundaries(
    make_redis_limiter: MakeLimiter, redis_url: str, clock: FakeClock
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    daily = Limits(tokens_per_day=100)
    monthly = Limits(tokens_per_month=100)
    await limiter.settle(await limiter.admit(key_scopes("d", daily), 0), 100)
    await limiter.settle(await limiter.admit(key_scopes("m", monthly), 0), 100)
    with pytest.raises(QuotaExhausted) as refused:
        await limiter.admit(key_scopes("d", daily), 0)
    assert refused.value.headers["Retry-After"] == str(12 * 3600)
    clock.set_utc(2025, 3, 14, 23, 59, 59)
    with pytest.raises(QuotaExhausted):
        await limiter.admit(key_scopes("d", daily), 0)
    clock.set_utc(2025, 3, 15)
    await limiter.admit(key_scopes("d", daily), 0)
    with pytest.raises(QuotaExhausted) as monthly_refused:
        await limiter.admit(key_scopes("m", monthly), 0)
    assert "monthly" in monthly_refused.value.message
    clock.set_utc(2025, 4, 1)
    await limiter.admit(key_scopes("m", monthly), 0)


async def test_a_limit_change_applies_at_once_and_keeps_the_count(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    assert await admitted([limiter], Limits(rpm=10), 5) == 5
    assert await admitted([limiter], Limits(rpm=6), 5) == 1
    assert await admitted([limiter], Limits(rpm=20), 20) == 14


async def test_keys_are_namespaced_and_all_expire(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(rpm=5, tpm=1000, max_concurrency=2, tokens_per_day=10**6)
    await limiter.settle(await limiter.admit(key_scopes("team-a", limits), 50), 70)
    await limiter.admit(key_scopes("team-a", limits), 50)
    with redis.Redis.from_url(redis_url) as client:
        keys = sorted(k.decode() for k in client.keys("*"))
        ttls = {key: client.ttl(key) for key in keys}
    assert keys == [
        "mg:{team-a}:d:2025-03-14",
        "mg:{team-a}:inflight",
        "mg:{team-a}:m:2025-03",
        "mg:{team-a}:req",
        "mg:{team-a}:tok",
    ]
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert ttls["mg:{team-a}:req"] <= 70


async def test_a_key_without_limits_skips_redis_at_admission(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    admission = await limiter.admit(key_scopes("free", Limits()), 100)
    assert admission.headers == {}
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys("*") == []
        await limiter.settle(admission, 42)  # sent in the next background batch
        for _ in range(250):  # up to 5 s
            if client.exists("mg:{free}:d:2025-03-14"):
                break
            await asyncio.sleep(0.02)
        assert client.hgetall("mg:{free}:d:2025-03-14") == {b"tokens": b"42", b"requests": b"1"}


async def test_usage_from_another_instance(make_redis_limiter: MakeLimiter, redis_url: str) -> None:
    worker = await started(make_redis_limiter, redis_url)
    admin = await started(make_redis_limiter, redis_url)
    limits = Limits(rpm=10, tpm=1000, max_concurrency=4, tokens_per_day=500)
    await worker.settle(await worker.admit(key_scopes("k", limits), 40), 30)
    await worker.admit(key_scopes("k", limits), 20)
    usage = await admin.fetch_usage("k", limits)
    assert usage["rpm"] == {"limit": 10, "used": 2}
    assert usage["tpm"] == {"limit": 1000, "used": 50}
    assert usage["max_concurrency"] == {"limit": 4, "used": 1}
    assert usage["tokens_per_day"]["used"] == 30
    assert usage["tokens_per_day"]["requests"] == 1
    assert worker.usage("k", limits)["tokens_per_day"]["used"] == 30  # its own last view
    assert admin.status() == {"store": "redis", "state": "ok", "mode": "fail-open", "error": None}


async def test_an_empty_redis_is_seeded_from_the_usage_store(
    make_redis_limiter: MakeLimiter, redis_url: str, store_path: Path
) -> None:
    store = UsageStore(store_path)
    store.open()
    store.record("k", "2025-03-14", "2025-03", 100)
    store.close()
    limiter = await started(make_redis_limiter, redis_url, UsageStore(store_path))
    with pytest.raises(QuotaExhausted):
        await limiter.admit(key_scopes("k", Limits(tokens_per_day=100)), 0)
    usage = await limiter.fetch_usage("k", Limits())
    assert usage["tokens_per_month"]["used"] == 100


async def test_a_request_cancelled_during_admission_does_not_keep_its_slot(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(rpm=100, max_concurrency=1)
    admitting = asyncio.create_task(limiter.admit(key_scopes("k", limits), 0))
    await asyncio.sleep(0)  # the script is on its way
    admitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await admitting
    for _ in range(250):  # up to 5 s
        usage = await limiter.fetch_usage("k", limits)
        if usage["max_concurrency"]["used"] == 0:
            break
        await asyncio.sleep(0.02)
    assert usage["rpm"]["used"] == 1  # the script ran and admitted it ...
    assert usage["max_concurrency"]["used"] == 0  # ... and the orphan was settled
    await limiter.admit(key_scopes("k", limits), 0)


async def test_a_settlement_whose_caller_is_cancelled_still_completes(
    make_redis_limiter: MakeLimiter, redis_url: str
) -> None:
    limiter = await started(make_redis_limiter, redis_url)
    limits = Limits(max_concurrency=1, tokens_per_day=1000)
    admission = await limiter.admit(key_scopes("k", limits), 0)
    settling = asyncio.create_task(limiter.settle(admission, 30))
    await asyncio.sleep(0)
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    await limiter.close()  # waits for the shielded settlement
    checker = await started(make_redis_limiter, redis_url)
    usage = await checker.fetch_usage("k", limits)
    assert usage["max_concurrency"]["used"] == 0
    assert usage["tokens_per_day"]["used"] == 30
