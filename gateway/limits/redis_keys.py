"""Redis key names, script loading and error text for the shared limiter.

Every key of one client key id shares the hash tag `{id}`, so a script touching them all
stays on one slot. TTLs make idle keys disappear: windows after 70 s, leases after the lease
time, day totals a day after the day ends, month totals a week after the month ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from gateway.limits.periods import DAY_S, Periods

WINDOW_TTL_S = 70
DAY_TOTALS_KEPT_S = DAY_S
MONTH_TOTALS_KEPT_S = 7 * DAY_S


@dataclass(frozen=True, slots=True)
class KeyNames:
    requests: str
    tokens: str
    leases: str
    day: str
    month: str


def key_names(key_id: str, day: str, month: str) -> KeyNames:
    """Keys of one client key id; `day` (YYYY-MM-DD) and `month` (YYYY-MM) name the totals."""
    base = f"mg:{{{key_id}}}:"
    return KeyNames(
        requests=base + "req",
        tokens=base + "tok",
        leases=base + "inflight",
        day=f"{base}d:{day}",
        month=f"{base}m:{month}",
    )


def day_ttl(periods: Periods, now: float) -> int:
    """Seconds the day totals live: to the end of the day, and a day more for reading.

    Relative TTLs (not EXPIREAT) so a worker's clock never expires keys early on the server.
    """
    return max(0, int(periods.day_ends_at - now)) + DAY_TOTALS_KEPT_S


def month_ttl(periods: Periods, now: float) -> int:
    return max(0, int(periods.month_ends_at - now)) + MONTH_TOTALS_KEPT_S


def lua(name: str) -> str:
    return resources.files("gateway.limits").joinpath(name).read_text(encoding="utf-8")


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://\S+")
_CREDENTIALS = re.compile(r"(?i)(pass(word)?|auth|user(name)?)\S*\s*[=:]\s*\S+")


def describe_failure(exc: BaseException) -> str:
    """The error for status and logs: its type and message, with URLs and credentials cut."""
    text = _CREDENTIALS.sub(r"\1=<hidden>", _URL.sub("<redis-url>", str(exc)))
    return f"{type(exc).__name__}: {text}"[:300]
