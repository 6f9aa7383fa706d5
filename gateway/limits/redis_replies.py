"""Reading the Redis scripts' replies: x-ratelimit headers and the 429 to raise."""

from __future__ import annotations

from gateway.errors import RateLimited
from gateway.limits import refusals
from gateway.limits.periods import Periods
from gateway.limits.window import WINDOW_S
from policies.scopes import REFUSAL_ORDER, LimitName, Scope

REPLY_PER_SCOPE = 10
"""Integers per scope in the admission script's reply."""
VERDICT_LIMITS: tuple[LimitName, ...] = (
    "tokens_per_day",
    "tokens_per_month",
    "rpm",
    "tpm",
    "max_concurrency",
    "usd_per_day",
    "usd_per_month",
)
"""The limit of each verdict of redis_admit.lua (1 = tokens_per_day ...); a shadow limit it
would refuse on is the bit 2^(verdict - 1)."""
_SHADOW_ORDER = tuple((VERDICT_LIMITS.index(name), name) for name in REFUSAL_ORDER)
_SHADOW_FIELD = b"shadow:"
_NO_SHADOW = " -1 -1 -1 -1 -1 -1 -1"


def limit_arg(limit: int | None) -> int:
    """A limit as the scripts take it: -1 for "not limited"."""
    return -1 if limit is None else limit


def limit_args(scope: Scope) -> str:
    """A scope's 14 limits as redis_admit.lua takes them: 7 enforced, then 7 in shadow."""
    limits = scope.limits
    enforced = (
        f"{limit_arg(limits.rpm)} {limit_arg(limits.tpm)} "
        f"{limit_arg(limits.max_concurrency)} {limit_arg(limits.tokens_per_day)} "
        f"{limit_arg(limits.tokens_per_month)} {limit_arg(scope.usd_per_day)} "
        f"{limit_arg(scope.usd_per_month)}"
    )
    shadow = scope.shadow
    if shadow is None:
        return enforced + _NO_SHADOW
    return (
        f"{enforced} {limit_arg(shadow.rpm)} {limit_arg(shadow.tpm)} "
        f"{limit_arg(shadow.max_concurrency)} {limit_arg(shadow.tokens_per_day)} "
        f"{limit_arg(shadow.tokens_per_month)} {limit_arg(scope.shadow_usd_per_day)} "
        f"{limit_arg(scope.shadow_usd_per_month)}"
    )


def shadow_hits(scope_id: str, bits: int) -> tuple[tuple[str, str], ...]:
    """(scope id, limit) of each shadow limit in the reply's bits, in the refusal order."""
    return tuple((scope_id, name) for bit, name in _SHADOW_ORDER if bits >> bit & 1)


def shadow_counts(totals: dict[bytes, bytes]) -> dict[str, int]:
    """Would-be refusals by limit from a day or month totals hash (fields shadow:LIMIT)."""
    return {
        name[len(_SHADOW_FIELD) :].decode(): int(count)
        for name, count in totals.items()
        if name.startswith(_SHADOW_FIELD)
    }


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
    scope: Scope,
    estimate: int,
    totals: tuple[int, int, int, int],
    wait: float,
    periods: Periods,
    headers: dict[str, str],
    now: float,
) -> RateLimited:
    """The error for a refused admission; `totals`: the scope's day tokens, month tokens,
    day and month spend (micro-dollars); `wait`: seconds until enough slides out."""
    who, limits = scope.label, scope.limits
    day, month, day_usd, month_usd = totals
    day_left, month_left = periods.day_ends_at - now, periods.month_ends_at - now
    if verdict == 1 and limits.tokens_per_day is not None:
        return refusals.quota_exhausted(who, "day", day, limits.tokens_per_day, day_left, headers)
    if verdict == 2 and limits.tokens_per_month is not None:
        return refusals.quota_exhausted(
            who, "month", month, limits.tokens_per_month, month_left, headers
        )
    if verdict == 6 and scope.usd_per_day is not None:
        return refusals.budget_exhausted(who, "day", day_usd, scope.usd_per_day, day_left, headers)
    if verdict == 7 and scope.usd_per_month is not None:
        return refusals.budget_exhausted(
            who, "month", month_usd, scope.usd_per_month, month_left, headers
        )
    if verdict == 3 and limits.rpm is not None:
        return refusals.rpm_exceeded(who, limits.rpm, wait, headers)
    if verdict == 4 and limits.tpm is not None:
        return refusals.tpm_exceeded(who, limits.tpm, estimate, wait, headers)
    max_conc = limits.max_concurrency or 0
    return refusals.concurrency_exceeded(who, max_conc, limits.rpm is not None, headers)
