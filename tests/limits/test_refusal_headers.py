"""The x-ratelimit headers of every mix of limits, on both backends (the contract's promise).

Every 429 carries Retry-After and the request trio, and the tokens trio when the key has
tpm; a success carries the request trio when the key has rpm and the tokens trio with tpm.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.errors import RateLimited
from gateway.limits.base import Limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.redis import RedisLimiter
from policies.models import Limits
from policies.scopes import key_scopes
from tests.support.fake_clock import FakeClock

REQUESTS = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
}
TOKENS = {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield MemoryLimiter(None, clock=clock)
        return
    url: str = request.getfixturevalue("redis_url")  # a sync fixture: fine from here
    made = RedisLimiter(url, None, clock=clock)
    await made.start()
    yield made
    await made.close()


async def refusal(limiter: Limiter, limits: Limits, estimate: int = 10) -> RateLimited:
    """Admit (and settle at 100 tokens) until the key is refused; the refusal."""
    for _ in range(10):
        try:
            admission = await limiter.admit(key_scopes("k", limits), estimate)
        except RateLimited as refused:
            return refused
        if limits.max_concurrency is None:
            await limiter.settle(admission, 100)
    raise AssertionError("never refused")


def trios(headers: dict[str, str]) -> tuple[bool, bool]:
    names = set(headers)
    for trio in (REQUESTS, TOKENS):
        assert not names & trio or trio <= names, headers  # a trio comes whole or not at all
    return names >= REQUESTS, names >= TOKENS


@pytest.mark.parametrize(
    "limits",
    [
        Limits(rpm=2),
        Limits(tpm=150),
        Limits(tokens_per_day=150),
        Limits(tokens_per_month=150),
        Limits(max_concurrency=2),
        Limits(tpm=1000, tokens_per_day=150),
        Limits(rpm=100, tpm=150),
        Limits(rpm=100, tokens_per_month=150),
        Limits(tpm=10_000, max_concurrency=1),
    ],
    ids=repr,
)
async def test_every_429_carries_the_request_trio_and_tokens_with_tpm(
    limiter: Limiter, limits: Limits
) -> None:
    refused = await refusal(limiter, limits)
    headers = refused.headers
    assert refused.status_code == 429 and int(headers["Retry-After"]) >= 1
    assert trios(headers) == (True, limits.tpm is not None)
    if limits.rpm is None:  # no window to report: the refusal itself
        assert headers["x-ratelimit-remaining-requests"] == "0"
        # the refusing limit where it counts requests (here: every key with concurrency)
        assert headers["x-ratelimit-limit-requests"] == str(limits.max_concurrency or 0)
    else:  # the key's own window, as on its successes
        assert headers["x-ratelimit-limit-requests"] == str(limits.rpm)


async def test_a_tpm_refusal_without_rpm_says_when_to_retry(limiter: Limiter) -> None:
    refused = await refusal(limiter, Limits(tpm=150))
    assert refused.headers["x-ratelimit-limit-requests"] == "0"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # settled at 12:00:00, the tokens leave the window at 12:01:00; now is 12:00:00.25
    assert refused.headers["x-ratelimit-reset-requests"] == "59.75s"
    assert refused.headers["Retry-After"] == "60"
    too_big = await refusal(limiter, Limits(tpm=150), estimate=400)
    assert too_big.headers["x-ratelimit-reset-requests"] == "1m0s"


async def test_a_quota_refusal_without_rpm_resets_with_the_quota(limiter: Limiter) -> None:
    refused = await refusal(limiter, Limits(tokens_per_day=150))
    # 12:00:00.25 to the next 00:00 UTC
    assert refused.headers["x-ratelimit-reset-requests"] == "11h59m59.75s"
    assert refused.headers["Retry-After"] == str(12 * 3600)


@pytest.mark.parametrize(
    "limits",
    [
        Limits(rpm=5),
        Limits(tpm=500),
        Limits(rpm=5, tpm=500),
        Limits(tokens_per_day=500),
        Limits(max_concurrency=3, tokens_per_month=500),
    ],
    ids=repr,
)
async def test_a_success_carries_the_trio_of_each_window_limit(
    limiter: Limiter, limits: Limits
) -> None:
    admission = await limiter.admit(key_scopes("k", limits), 10)
    assert trios(admission.headers) == (limits.rpm is not None, limits.tpm is not None)
