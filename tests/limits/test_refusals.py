"""Header values and the 429 errors."""

from __future__ import annotations

import math

import pytest

from gateway.errors import Protocol, QuotaExhausted, RateLimited
from gateway.limits import refusals


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-3, "0s"),
        (0.25, "250ms"),
        (0.0001, "1ms"),
        (6.5, "6.5s"),
        (59.75, "59.75s"),
        (60, "1m0s"),
        (61.5, "1m1.5s"),
        (3725, "1h2m5s"),
    ],
)
def test_durations_are_written_like_openai_writes_them(seconds: float, text: str) -> None:
    assert refusals.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "value"), [(0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.75, "60")]
)
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, value: str) -> None:
    assert refusals.retry_after(seconds) == value


def test_retry_after_of_a_window_that_never_frees_is_a_minute() -> None:
    assert refusals.retry_after(math.inf) == "60"


def test_remaining_never_goes_below_zero() -> None:
    headers: dict[str, str] = {}
    refusals.add_window_headers(headers, "tokens", 100, 150, 3.0)
    assert headers == {
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "3s",
    }


def test_quota_error_is_insufficient_quota_in_openai_shape() -> None:
    err = refusals.quota_exhausted("team-a", "day", 120, 100, 3600.2, {})
    assert isinstance(err, QuotaExhausted)
    assert err.status_code == 429
    assert err.headers["Retry-After"] == "3601"
    body = err.body(Protocol.OPENAI)["error"]
    assert body["type"] == body["code"] == "insufficient_quota"
    assert "tokens_per_day" in body["message"]


def test_concurrency_refusal_of_a_key_without_rpm_names_the_concurrency_limit() -> None:
    err = refusals.concurrency_exceeded("team-a", 4, False, {})
    assert type(err) is RateLimited
    assert err.headers == {
        "x-ratelimit-limit-requests": "4",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1s",
        "Retry-After": "1",
    }
