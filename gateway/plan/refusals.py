"""Why a replayed request is refused: the gate (401, 404, 403) or the limit and scope (429).

The live limiter raises the same errors the gateway answers with; the plan names the limit
from them. The limit is read from an explicit `limit` attribute when the error has one, else
from the wording gateway/limits/refusals.py gives each limit (tests/plan pin every builder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import QuotaExhausted, RateLimited

GATE_REASONS = {
    "key_removed": "the key is not in the policy",
    "key_disabled": "the key is disabled",
    "key_expired": "the key has expired",
    "route_gone": "no route serves the model",
    "route_unusable": "the route's targets cannot be called",
    "model_not_allowed": "the key may not use the model",
}
LIMITS = (
    "rpm",
    "tpm",
    "max_concurrency",
    "tokens_per_day",
    "tokens_per_month",
    "usd_per_day",
    "usd_per_month",
)
WINDOW_OF = {
    "rpm": "minute",
    "tpm": "minute",
    "max_concurrency": "minute",
    "tokens_per_day": "day",
    "usd_per_day": "day",
    "tokens_per_month": "month",
    "usd_per_month": "month",
}
"""The period a limit's refusals are grouped by to find the peak that hit it."""

_SCOPE = re.compile(r"\b(key|team) '([^']*)'")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A replayed request's refusal; equal refusals are one interned object (see `refusal`)."""

    status: int
    reason: str
    """A GATE_REASONS key, or a limit name (LIMITS)."""
    scope: str = ""
    """For a limit: the scope that refused, as refusals name it (key 'a', team 't')."""

    @property
    def label(self) -> str:
        """`429 rpm (team 'search')`, `403 model_not_allowed`."""
        where = f" ({self.scope})" if self.scope else ""
        return f"{self.status} {self.reason}{where}"

    @property
    def is_limit(self) -> bool:
        return self.status == 429


_interned: dict[tuple[int, str, str], Refusal] = {}


def refusal(status: int, reason: str, scope: str = "") -> Refusal:
    """The one Refusal object for these fields (compared by identity on the hot path)."""
    key = (status, reason, scope)
    found = _interned.get(key)
    if found is None:
        found = _interned[key] = Refusal(status, reason, scope)
    return found


def limit_refusal(err: RateLimited) -> Refusal:
    """The Refusal for a limiter's 429: which limit, which scope."""
    message = err.message
    named = getattr(err, "limit", None)
    limit = named if isinstance(named, str) and named in LIMITS else _limit_in(err, message)
    found = _SCOPE.search(message)
    scope = f"{found.group(1)} '{found.group(2)}'" if found else ""
    return refusal(429, limit, scope)


def _limit_in(err: RateLimited, message: str) -> str:
    if isinstance(err, QuotaExhausted):
        period = "day" if "daily" in message else "month"
        return f"usd_per_{period}" if "budget" in message else f"tokens_per_{period}"
    if "concurrent requests" in message:
        return "max_concurrency"
    if "tokens per minute" in message:
        return "tpm"
    return "rpm"
