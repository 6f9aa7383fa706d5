"""Reading the Redis scripts' replies: x-ratelimit headers and the 429 to raise."""

from __future__ import annotations

from gateway.errors import RateLimited
from gateway.limits import refusals
from gateway.limits.periods import Periods
from gateway.limits.window import WINDOW_S
from policies.models import Limits


def limit_arg(limit: int | None) -> int:
    """A limit as the scripts take it: -1 for "not limited"."""
    return -1 if limit is None else limit


def window_total(buckets: dict[bytes, bytes], now_sec: int) -> int:
    return sum(int(n) for s, n in buckets.items() if int(s) > now_sec - WINDOW_S)


def reply_headers(
    rpm: int | None,
    requests: int,
    req_oldest: int,
    tpm: int | None,
    tokens: int,
    tok_oldest: int,
    now: float,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rpm is not None:
        reset = req_oldest + WINDOW_S - now if requests and req_oldest >= 0 else 0.0
        refusals.add_window_headers(headers, "requests", rpm, requests, reset)
    if tpm is not None:
        reset = tok_oldest + WINDOW_S - now if tokens and tok_oldest >= 0 else 0.0
        refusals.add_window_headers(headers, "tokens", tpm, tokens, reset)
    return headers


def refusal(
    verdict: int,
    key_id: str,
    limits: Limits,
    estimate: int,
    day: int,
    month: int,
    wait: float,
    periods: Periods,
    headers: dict[str, str],
    now: float,
) -> RateLimited:
    """The error for a refused admission; `wait`: seconds until enough slides out."""
    if verdict == 1 and limits.tokens_per_day is not None:
        return refusals.quota_exhausted(
            key_id, "day", day, limits.tokens_per_day, periods.day_ends_at - now, headers
        )
    if verdict == 2 and limits.tokens_per_month is not None:
        return refusals.quota_exhausted(
            key_id, "month", month, limits.tokens_per_month, periods.month_ends_at - now, headers
        )
    if verdict == 3 and limits.rpm is not None:
        return refusals.rpm_exceeded(key_id, limits.rpm, wait, headers)
    if verdict == 4 and limits.tpm is not None:
        return refusals.tpm_exceeded(key_id, limits.tpm, estimate, wait, headers)
    max_conc = limits.max_concurrency or 0
    return refusals.concurrency_exceeded(key_id, max_conc, limits.rpm is not None, headers)
