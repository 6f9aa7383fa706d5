"""The usage report of one key (for /admin/api/usage), the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.limits.periods import Periods
from gateway.payloads import LimitsUse, utc_iso
from policies.models import Limits


@dataclass(slots=True)
class UseCounts:
    rpm_used: int = 0
    tpm_used: int = 0
    in_flight: int = 0
    day_tokens: int = 0
    day_requests: int = 0
    month_tokens: int = 0
    month_requests: int = 0


def usage_report(key_id: str, limits: Limits, periods: Periods, use: UseCounts) -> LimitsUse:
    """Use against each limit; `limit` is None where the key is not limited."""
    return {
        "key_id": key_id,
        "rpm": {"limit": limits.rpm, "used": use.rpm_used},
        "tpm": {"limit": limits.tpm, "used": use.tpm_used},
        "max_concurrency": {"limit": limits.max_concurrency, "used": use.in_flight},
        "tokens_per_day": {
            "limit": limits.tokens_per_day,
            "used": use.day_tokens,
            "requests": use.day_requests,
            "period": periods.day,
            "resets_at": utc_iso(periods.day_ends_at, "seconds"),
        },
        "tokens_per_month": {
            "limit": limits.tokens_per_month,
            "used": use.month_tokens,
            "requests": use.month_requests,
            "period": periods.month,
            "resets_at": utc_iso(periods.month_ends_at, "seconds"),
        },
    }
