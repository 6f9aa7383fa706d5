"""Shadow limits in the limiters: served, counted like enforced ones, reported, switchable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.errors import QuotaExhausted, RateLimited
from gateway.limits.base import Admission, Limiter
from policies.models import Limits
from policies.scopes import key_scopes, scope_of
from tests.support.fake_clock import FakeClock

NewLimiter = Callable[[], Limiter]
USD = 1_000_000


async def started(new_limiter: NewLimiter) -> Limiter:
    limiter = new_limiter()
    await limiter.start()
    return limiter


def shadow(**values: int) -> Limits:
    return Limits.model_validate({"enforce": "shadow", **values})


async def test_rpm_serves_counts_and_reports(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    limits = shadow(rpm=2)
    seen = [await limiter.admit(key_scopes("k", limits), 0) for _ in range(4)]
    assert [a.shadow for a in seen] == [(), (), (("k", "rpm"),), (("k", "rpm"),)]
    assert seen[0].headers == {}  # invisible to clients: no enforced rpm, no headers
    use = await limiter.fetch_usage("k", limits)
    assert use["rpm"] == {"limit": None, "used": 4}  # every served request is counted
    assert use["shadow"] == {
        "limits": {"rpm": 2},
        "refusals_day": {"rpm": 2},
        "refusals_month": {"rpm": 2},
    }


async def test_tpm_serves_and_counts_reservations(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    limits = shadow(tpm=100)
    first = await limiter.admit(key_scopes("k", limits), 60)
    second = await limiter.admit(key_scopes("k", limits), 60)  # 60 + 60 > 100
    assert (first.shadow, second.shadow) == ((), (("k", "tpm"),))
    assert (await limiter.fetch_usage("k", limits))["tpm"]["used"] == 120
    await limiter.settle(first, 10)  # the reservation becomes the real figure
    await limiter.settle(second, 10)
    assert (await limiter.fetch_usage("k", limits))["tpm"]["used"] == 20


async def test_concurrency_serves_and_counts_in_flight(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    limits = shadow(max_concurrency=1)
    first = await limiter.admit(key_scopes("k", limits), 0)
    second = await limiter.admit(key_scopes("k", limits), 0)
    assert second.shadow == (("k", "max_concurrency"),)
    assert (await limiter.fetch_usage("k", limits))["max_concurrency"]["used"] == 2
    await limiter.settle(first, 0)
    third = await limiter.admit(key_scopes("k", limits), 0)
    assert third.shadow == (("k", "max_concurrency"),)  # `second` still holds its slot
    await limiter.settle(second, 0)
    await limiter.settle(third, 0)
    assert (await limiter.admit(key_scopes("k", limits), 0)).shadow == ()


@pytest.mark.parametrize(
    ("limit", "value", "tokens", "cost"),
    [
        ("tokens_per_day", 10, 10, 0),
        ("tokens_per_month", 10, 10, 0),
        ("usd_per_day", 1, 0, USD),
        ("usd_per_month", 1, 0, USD),
    ],
)
async def test_quotas_and_budgets_serve_and_count(
    new_limiter: NewLimiter, limit: str, value: int, tokens: int, cost: int
) -> None:
    limiter = await started(new_limiter)
    limits = shadow(**{limit: value})
    first = await limiter.admit(key_scopes("k", limits), 0)
    assert first.shadow == ()
    await limiter.settle(first, tokens, cost)
    for _ in range(2):  # used up: served all the same, each counted
        over = await limiter.admit(key_scopes("k", limits), 0)
        assert over.shadow == (("k", limit),)
        await limiter.settle(over, tokens, cost)
    use = await limiter.fetch_usage("k", limits)
    assert use["tokens_per_day"]["used"] == 3 * tokens
    assert use["tokens_per_month"]["requests"] == 3
    assert use["shadow"]["refusals_day"] == {limit: 2}
    assert use["shadow"]["limits"] == {limit: value}


async def test_a_stricter_shadow_limit_beside_an_enforced_one(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    limits = Limits.model_validate({"rpm": 4, "shadow": {"rpm": 2}})
    served = [await limiter.admit(key_scopes("k", limits), 0) for _ in range(4)]
    assert [len(a.shadow) for a in served] == [0, 0, 1, 1]
    assert served[-1].headers["x-ratelimit-limit-requests"] == "4"  # the enforced one speaks
    with pytest.raises(RateLimited):
        await limiter.admit(key_scopes("k", limits), 0)
    use = await limiter.fetch_usage("k", limits)
    assert use["rpm"] == {"limit": 4, "used": 4}  # the refused request is counted nowhere
    assert use["shadow"]["refusals_day"] == {"rpm": 2}


async def test_every_shadow_limit_exceeded_is_named_in_order(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    limits = shadow(rpm=1, max_concurrency=1, tokens_per_day=1)
    first = await limiter.admit(key_scopes("k", limits), 0)
    await limiter.settle(first, 5)
    held = await limiter.admit(key_scopes("k", limits), 0)
    assert held.shadow == (("k", "tokens_per_day"), ("k", "rpm"))
    third = await limiter.admit(key_scopes("k", limits), 0)
    assert third.shadow == (("k", "tokens_per_day"), ("k", "rpm"), ("k", "max_concurrency"))


async def test_a_teams_shadow_limit_names_the_team(new_limiter: NewLimiter) -> None:
    limiter = await started(new_limiter)
    team = scope_of("team", "search", shadow(rpm=1))
    scopes = (scope_of("key", "a", Limits()), team)
    other = (scope_of("key", "b", Limits()), team)
    assert (await limiter.admit(scopes, 0)).shadow == ()
    assert (await limiter.admit(other, 0)).shadow == (("team:search", "rpm"),)


@pytest.mark.parametrize(
    ("written", "refusal"),
    [
        ({"rpm": 3}, RateLimited),
        ({"tpm": 3}, RateLimited),
        ({"max_concurrency": 3}, RateLimited),
        ({"tokens_per_day": 3}, QuotaExhausted),
        ({"usd_per_month": 3}, QuotaExhausted),
    ],
)
async def test_switching_to_enforced_keeps_the_counts(
    new_limiter: NewLimiter, written: dict[str, int], refusal: type[Exception]
) -> None:
    """The same counters: what the shadow limit counted, the enforced one refuses on."""
    limiter = await started(new_limiter)
    before = Limits.model_validate({"enforce": "shadow", **written})
    after = Limits.model_validate({"enforce": "on", **written})
    holding = "max_concurrency" in written
    for _ in range(3):  # each request: 1 token, $1 (kept in flight for max_concurrency)
        admission = await limiter.admit(key_scopes("k", before), 1)
        if not holding:
            await limiter.settle(admission, 1, USD)
    with pytest.raises(refusal):
        await limiter.admit(key_scopes("k", after), 1)


async def test_counts_do_not_depend_on_the_mode(new_limiter: NewLimiter) -> None:
    """One trace, once through a shadow limit and once through no limit of that kind
    beside an enforced one: the counters read the same."""
    limiter = await started(new_limiter)
    shadowed = Limits.model_validate({"tpm": 10_000, "shadow": {"rpm": 1, "tokens_per_day": 1}})
    plain = Limits.model_validate({"tpm": 10_000, "rpm": 1_000, "tokens_per_day": 1_000})
    for key, limits in (("s", shadowed), ("p", plain)):
        for _ in range(3):
            await limiter.settle(await limiter.admit(key_scopes(key, limits), 7), 9, 5)
    s, p = await limiter.fetch_usage("s", shadowed), await limiter.fetch_usage("p", plain)
    for name in ("tpm", "max_concurrency", "tokens_per_day", "tokens_per_month"):
        assert s[name]["used"] == p[name]["used"], name
    assert s["rpm"]["used"] == p["rpm"]["used"] == 3


@pytest.mark.redis
async def test_two_gateways_on_one_redis_count_would_be_refusals_once(
    make_redis_limiter: Callable[..., Limiter], redis_url: str, clock: FakeClock
) -> None:
    first, second = make_redis_limiter(redis_url), make_redis_limiter(redis_url)
    await first.start()
    await second.start()
    limits = shadow(rpm=5)
    results = await asyncio.gather(
        *((first, second)[i % 2].admit(key_scopes("k", limits), 0) for i in range(12))
    )
    assert all(isinstance(r, Admission) for r in results)  # all served
    assert sum(len(r.shadow) for r in results) == 7  # exactly the 6th to the 12th
    for limiter in (first, second):
        use = await limiter.fetch_usage("k", limits)
        assert use["rpm"]["used"] == 12
        assert use["shadow"]["refusals_day"] == {"rpm": 7}
    enforced = Limits(rpm=5)  # the switch, seen by both: the shared window refuses at once
    for limiter in (first, second):
        with pytest.raises(RateLimited):
            await limiter.admit(key_scopes("k", enforced), 0)
