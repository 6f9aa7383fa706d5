"""Admission over key, team and parent scopes: exact under concurrency, the first refusing
scope named, budgets in micro-dollars; the same for the in-process and the Redis limiter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from gateway.errors import QuotaExhausted, RateLimited
from gateway.limits.base import Admission, Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from policies.models import Limits
from tests.support.fake_clock import FakeClock
from tests.teams.scopes import team_scopes, usd

MakeLimiter = Callable[[], Limiter]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[Callable[[], Limiter]]:
    """Started limiters of one kind; with Redis, all on one (emptied) redis-server."""
    made: list[Limiter] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new() -> Limiter:
        limiter: Limiter
        if url is None:
            limiter = MemoryLimiter(None, clock=clock)
        else:
            limiter = RedisLimiter(url, None, clock=clock, probe_interval_s=0.05)
        made.append(limiter)
        return limiter

    yield new
    for limiter in made:
        await limiter.close()


async def started(make: MakeLimiter) -> Limiter:
    limiter = make()
    await limiter.start()
    return limiter


async def test_twenty_simultaneous_requests_over_five_keys_against_team_rpm_10_let_10_through(
    make: MakeLimiter,
) -> None:
    first = await started(make)
    # With Redis, two limiters (two gateways) share the team; in memory, one process does.
    limiters = [first, await started(make)] if isinstance(first, RedisLimiter) else [first]
    team = Limits(rpm=10)
    results = await asyncio.gather(
        *(
            limiters[i % len(limiters)].admit(team_scopes(f"k{i % 5}", search=team), 1)
            for i in range(20)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, Admission | RateLimited) for r in results), results
    assert sum(isinstance(r, Admission) for r in results) == 10
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert "Rate limit reached for team 'search': 10 requests per minute" in str(refused[0])
    assert refused[0].headers["Retry-After"] == "60"


async def test_a_refusal_names_the_first_refusing_scope_and_counts_nowhere(
    make: MakeLimiter,
) -> None:
    limiter = await started(make)
    scopes = team_scopes("k", key=Limits(rpm=3), search=Limits(rpm=5), org=Limits(rpm=1))
    await limiter.admit(scopes, 0)
    with pytest.raises(RateLimited, match="for team 'org': 1 requests per minute"):
        await limiter.admit(scopes, 0)
    # the refused request was not counted in the key's or the team's window
    key_only = team_scopes("k", key=Limits(rpm=3), search=Limits(rpm=5))
    await limiter.admit(key_only, 0)
    await limiter.admit(key_only, 0)
    with pytest.raises(RateLimited, match="for key 'k': 3 requests per minute"):
        await limiter.admit(key_only, 0)


async def test_headers_speak_for_the_tightest_scope(make: MakeLimiter) -> None:
    limiter = await started(make)
    scopes = team_scopes("k", key=Limits(rpm=100), search=Limits(rpm=4, tpm=1000))
    admission = await limiter.admit(scopes, 100)
    assert admission.headers["x-ratelimit-limit-requests"] == "4"
    assert admission.headers["x-ratelimit-remaining-requests"] == "3"
    assert admission.headers["x-ratelimit-remaining-tokens"] == "900"


async def test_team_concurrency_is_shared_and_freed_at_settlement(make: MakeLimiter) -> None:
    limiter = await started(make)
    team = Limits(max_concurrency=2)
    a = await limiter.admit(team_scopes("a", search=team), 0)
    await limiter.admit(team_scopes("b", search=team), 0)
    with pytest.raises(RateLimited, match="concurrent requests for team 'search'"):
        await limiter.admit(team_scopes("c", search=team), 0)
    await limiter.settle(a, 10)
    await limiter.admit(team_scopes("c", search=team), 0)


async def test_nested_budgets_stop_at_the_first_exhausted_scope(make: MakeLimiter) -> None:
    limiter = await started(make)
    key, search, org = (
        Limits(usd_per_day=Decimal("5")),
        Limits(usd_per_day=Decimal("3")),
        Limits(usd_per_month=Decimal("4")),
    )
    scopes = team_scopes("k", key, search, org)
    await limiter.settle(await limiter.admit(scopes, 0), 100, usd(2.5))
    await limiter.settle(await limiter.admit(scopes, 0), 100, usd(0.5))  # search: $3 of $3
    with pytest.raises(QuotaExhausted) as caught:
        await limiter.admit(scopes, 0)
    message = str(caught.value)
    assert "daily budget of team 'search' is spent ($3 of $3)" in message
    assert "resets at 00:00 UTC, in 11h59m59.75s" in message
    assert "usd_per_day" in message
    assert caught.value.code == "insufficient_quota"
    assert caught.value.headers["Retry-After"] == str(12 * 3600)
    # another team under org: org has $1 left, so it admits until org is spent
    other = (team_scopes("j", org=org)[0], team_scopes("j", org=org)[2])
    await limiter.settle(await limiter.admit(other, 0), 10, usd(1))
    with pytest.raises(QuotaExhausted, match=r"monthly budget of team 'org' is spent \(\$4 of"):
        await limiter.admit(other, 0)
    with pytest.raises(QuotaExhausted, match="team 'search'"):  # still the first in order
        await limiter.admit(scopes, 0)


async def test_the_key_budget_refuses_before_its_teams(make: MakeLimiter) -> None:
    limiter = await started(make)
    scopes = team_scopes("k", Limits(usd_per_day=Decimal("0.01")), Limits(usd_per_day=Decimal(0)))
    with pytest.raises(QuotaExhausted, match="team 'search' is spent \\(\\$0 of \\$0\\)"):
        await limiter.admit(scopes, 0)  # a zero budget admits nothing
    ok = team_scopes("k", Limits(usd_per_day=Decimal("0.01")))
    await limiter.settle(await limiter.admit(ok, 0), 1, 10_001)
    with pytest.raises(QuotaExhausted, match=r"key 'k' is spent \(\$0.010001 of \$0.01\)"):
        await limiter.admit(ok, 0)


async def test_an_unknown_cost_counts_no_spend_but_its_tokens(make: MakeLimiter) -> None:
    limiter = await started(make)
    scopes = team_scopes("k", search=Limits(usd_per_day=Decimal("0.000001"), tokens_per_day=50))
    await limiter.settle(await limiter.admit(scopes, 0), 40, None)
    await limiter.settle(await limiter.admit(scopes, 0), 5, None)
    usage = await limiter.fetch_usage("team:search", scopes[1].limits)
    assert usage["tokens_per_day"]["used"] == 45
    await limiter.settle(await limiter.admit(scopes, 0), 1, 1)
    with pytest.raises(QuotaExhausted, match="daily budget of team 'search'"):
        await limiter.admit(scopes, 0)


async def test_budgets_reset_with_the_utc_day_and_month(
    make: MakeLimiter, clock: FakeClock
) -> None:
    limiter = await started(make)
    scopes = team_scopes(
        "k", search=Limits(usd_per_day=Decimal(1)), org=Limits(usd_per_month=Decimal(2))
    )
    await limiter.settle(await limiter.admit(scopes, 0), 1, usd(1))
    with pytest.raises(QuotaExhausted, match="daily budget of team 'search'"):
        await limiter.admit(scopes, 0)
    clock.set_utc(2025, 3, 15, 0, 0, 1)
    await limiter.settle(await limiter.admit(scopes, 0), 1, usd(1))
    clock.set_utc(2025, 3, 16)
    with pytest.raises(QuotaExhausted, match="resets on the 1st of next month"):
        await limiter.admit(scopes, 0)
    clock.set_utc(2025, 4, 1)
    await limiter.admit(scopes, 0)
