"""The x-ratelimit-* headers and the 429 errors, shared by every limiter backend.

Header meanings (OpenAI's names):
  x-ratelimit-limit-requests      the key's rpm
  x-ratelimit-remaining-requests  requests left in the sliding minute, this one included
  x-ratelimit-reset-requests      time until the oldest counted request leaves the window,
                                  i.e. until `remaining` next grows ("0s" if none is counted)
and the same for tokens (tpm; the window holds settled tokens plus in-flight reservations).

Every 429 carries the request trio, whatever limits the key has (the contract promises it).
A key without rpm has no request window to report, so its 429 states the refusal itself:
remaining 0, reset the same wait as Retry-After, and as limit the refusing limit when that
counts requests (max_concurrency), else 0 (no request is admitted until the reset).
"""

from __future__ import annotations

import math

from gateway.errors import QuotaExhausted, RateLimited
from gateway.limits.window import WINDOW_S


def format_duration(seconds: float) -> str:
    """Go-style durations as OpenAI sends them: 250ms, 6.5s, 1m0s."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    seconds = round(seconds, 3)
    if seconds < 60:  # the common case: windows are a minute long
        return f"{seconds:g}s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def retry_after(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1 (a never-freeing window says a minute)."""
    if math.isinf(seconds):
        seconds = WINDOW_S
    return str(max(1, math.ceil(seconds)))


_REQUEST_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)
_TOKEN_HEADERS = (
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)


def add_window_headers(
    headers: dict[str, str], unit: str, limit: int, used: int, reset_s: float
) -> None:
    """unit: "requests" or "tokens"."""
    names = _TOKEN_HEADERS if unit == "tokens" else _REQUEST_HEADERS
    limit_name, remaining_name, reset_name = names
    headers[limit_name] = str(limit)
    headers[remaining_name] = str(limit - used if used < limit else 0)
    headers[reset_name] = format_duration(WINDOW_S if math.isinf(reset_s) else reset_s)


def _refusal_request_trio(headers: dict[str, str], limit: int, wait_s: float) -> None:
    """The request trio of a 429 to a key without rpm (a key with rpm has its window's)."""
    if _REQUEST_HEADERS[0] in headers:
        return
    limit_name, remaining_name, reset_name = _REQUEST_HEADERS
    headers[limit_name] = str(limit)
    headers[remaining_name] = "0"
    headers[reset_name] = format_duration(WINDOW_S if math.isinf(wait_s) else wait_s)


def rpm_exceeded(who: str, rpm: int, wait_s: float, headers: dict[str, str]) -> RateLimited:
    headers["Retry-After"] = retry_after(wait_s)
    return RateLimited(
        f"Rate limit reached for {who}: {rpm} requests per minute. Retry after "
        f"{headers['Retry-After']} s, or ask an operator for a higher rpm limit.",
        headers=headers,
    )


def tpm_exceeded(
    who: str, tpm: int, estimate: int, wait_s: float, headers: dict[str, str]
) -> RateLimited:
    if estimate > tpm:
        headers["Retry-After"] = retry_after(WINDOW_S)
        _refusal_request_trio(headers, 0, WINDOW_S)
        return RateLimited(
            f"This request (about {estimate} prompt tokens) is larger than the {tpm} tokens "
            f"per minute allowed for {who}. Send a shorter request or ask an "
            "operator for a higher tpm limit.",
            headers=headers,
        )
    headers["Retry-After"] = retry_after(wait_s)
    _refusal_request_trio(headers, 0, wait_s)
    return RateLimited(
        f"Rate limit reached for {who}: {tpm} tokens per minute. Retry after "
        f"{headers['Retry-After']} s, or ask an operator for a higher tpm limit.",
        headers=headers,
    )


def concurrency_exceeded(
    who: str, max_concurrency: int, rpm_set: bool, headers: dict[str, str]
) -> RateLimited:
    if not rpm_set:  # a 429 always names the request limit that was hit
        _refusal_request_trio(headers, max_concurrency, 1)
    headers["Retry-After"] = "1"
    return RateLimited(
        f"Too many concurrent requests for {who}: at most {max_concurrency} at "
        "once. Retry when one of your requests has finished.",
        headers=headers,
    )


def budget_exhausted(
    who: str,
    period: str,
    spent_micros: int,
    budget_micros: int,
    wait_s: float,
    headers: dict[str, str],
) -> QuotaExhausted:
    """A USD budget spent; period: "day" or "month"."""
    headers["Retry-After"] = retry_after(wait_s)
    _refusal_request_trio(headers, 0, wait_s)
    resets = "at 00:00 UTC" if period == "day" else "on the 1st of next month, 00:00 UTC"
    field = "usd_per_day" if period == "day" else "usd_per_month"
    return QuotaExhausted(
        f"The {'daily' if period == 'day' else 'monthly'} budget of {who} is spent "
        f"({usd(spent_micros)} of {usd(budget_micros)}); it resets {resets}, in "
        f"{format_duration(wait_s)}. Ask an operator for a higher {field} to continue sooner.",
        headers=headers,
    )


def usd(micros: int) -> str:
    """$5, $2.50, $0.000125: cents always shown once there is a fraction."""
    dollars, rest = divmod(micros, 1_000_000)
    if not rest:
        return f"${dollars:,}"
    fraction = f"{rest:06d}".rstrip("0").ljust(2, "0")
    return f"${dollars:,}.{fraction}"


def quota_exhausted(
    who: str, period: str, used: int, limit: int, wait_s: float, headers: dict[str, str]
) -> QuotaExhausted:
    """period: "day" or "month"."""
    headers["Retry-After"] = retry_after(wait_s)
    _refusal_request_trio(headers, 0, wait_s)
    resets = "at 00:00 UTC" if period == "day" else "on the 1st of next month, 00:00 UTC"
    field = "tokens_per_day" if period == "day" else "tokens_per_month"
    return QuotaExhausted(
        f"The {'daily' if period == 'day' else 'monthly'} token quota of {who} is "
        f"used up ({used} of {limit} tokens); it resets {resets}. Ask an operator for a "
        f"higher {field} to continue sooner.",
        headers=headers,
    )
