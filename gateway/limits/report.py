"""The usage report of one key (for /admin/api/usage), the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.limits.periods import Periods
from gateway.payloads import LimitsUse, ShadowUse, utc_iso
from policies.models import Limits
from policies.scopes import usd_micros


@dataclass(slots=True)
class UseCounts:
    rpm_used: int = 0
    tpm_used: int = 0
    in_flight: int = 0
    day_tokens: int = 0
    day_requests: int = 0
    month_tokens: int = 0
    month_requests: int = 0
    day_micros: int = 0
    month_micros: int = 0
    day_shadow: dict[str, int] = field(default_factory=dict)
    """Would-be refusals of shadow limits today, by limit name."""
    month_shadow: dict[str, int] = field(default_factory=dict)


def usage_report(scope_id: str, limits: Limits, periods: Periods, use: UseCounts) -> LimitsUse:
    """Use against each limit; `limit` is None where the scope is not limited.
    `key_id` is the scope id: a key id, or team:NAME. The limits are the enforced ones; the
    shadow ones, with their would-be refusals, are under `shadow` (see `shadow_report`)."""
    limits, shadow_limits = limits.split()
    report: LimitsUse = {
        "key_id": scope_id,
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
        "usd_per_day": {
            "limit": usd_micros(limits.usd_per_day),
            "used": use.day_micros,
            "period": periods.day,
            "resets_at": utc_iso(periods.day_ends_at, "seconds"),
        },
        "usd_per_month": {
            "limit": usd_micros(limits.usd_per_month),
            "used": use.month_micros,
            "period": periods.month,
            "resets_at": utc_iso(periods.month_ends_at, "seconds"),
        },
    }
    report["shadow"] = shadow_report(shadow_limits, use)
    return report


def shadow_report(shadow_limits: Limits, use: UseCounts) -> ShadowUse:
    """The shadow limits (US dollars for budgets) and what they would have refused today and
    this month (all empty for a scope that never had any)."""
    values = shadow_limits.model_dump(exclude_none=True)
    return {
        "limits": {n: v if isinstance(v, int) else float(v) for n, v in values.items()},
        "refusals_day": dict(use.day_shadow),
        "refusals_month": dict(use.month_shadow),
    }
