"""Which thresholds of a scope's budgets and quotas its use has reached (pure, no IO).

A threshold is *reached* when use * 100 >= threshold * limit, not *crossed* by one request:
a limit lowered mid-period, a restart, or a settlement this worker did not see still alert,
and the dedupe (gateway/alerts/fired.py) makes each fire once per period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.limits.refusals import usd
from gateway.payloads import BudgetAlert, LimitsUse
from policies.alerts import AlertLimit, AlertRule, AlertsFile
from policies.models import MICROS_PER_USD
from policies.scopes import Scope

_WORDS: dict[AlertLimit, str] = {
    "usd_per_day": "daily budget",
    "usd_per_month": "monthly budget",
    "tokens_per_day": "daily token quota",
    "tokens_per_month": "monthly token quota",
}


@dataclass(frozen=True, slots=True)
class Reached:
    """One threshold of one limit of one scope, reached in one period."""

    scope: Scope
    limit: AlertLimit
    threshold: int
    used: int
    """Micro-dollars (usd_*) or tokens (tokens_*)."""
    amount: int
    """The limit, in the same unit."""
    period: str
    resets_at: str
    rule: AlertRule

    @property
    def key(self) -> str:
        """What fires once: scope, limit, period and threshold."""
        return f"{self.scope.id}|{self.limit}|{self.period}|{self.threshold}"

    @property
    def is_money(self) -> bool:
        return self.limit.startswith("usd_")

    def text(self) -> str:
        if self.is_money:
            amounts = f"{usd(self.used)} of {usd(self.amount)}"
        else:
            amounts = f"{self.used:,} of {self.amount:,} tokens"
        return (
            f"ModelGate: {self.scope.label} reached {self.threshold}% of its "
            f"{_WORDS[self.limit]} ({amounts} in {self.period}; resets {self.resets_at})"
        )

    def as_event(self, now: float) -> BudgetAlert:
        scale = MICROS_PER_USD if self.is_money else 1
        return {
            "ts": now,
            "scope": self.scope.id,
            "kind": self.scope.kind,
            "limit": self.limit,
            "threshold": self.threshold,
            "used": self.used / scale,
            "amount": self.amount / scale,
            "period": self.period,
            "resets_at": self.resets_at,
            "text": self.text(),
        }


def limit_amount(scope: Scope, limit: AlertLimit) -> int | None:
    """The scope's limit in micro-dollars or tokens (None: not limited)."""
    if limit == "usd_per_day":
        return scope.usd_per_day
    if limit == "usd_per_month":
        return scope.usd_per_month
    if limit == "tokens_per_day":
        return scope.limits.tokens_per_day
    return scope.limits.tokens_per_month


def watched(alerts: AlertsFile, scope: Scope) -> Iterator[tuple[AlertLimit, int, AlertRule]]:
    """(limit, amount, rule) of each limit of the scope that some rule watches."""
    for limit in ("usd_per_day", "usd_per_month", "tokens_per_day", "tokens_per_month"):
        amount = limit_amount(scope, limit)
        if not amount:  # no limit, or 0 (a block, not something to be warned about)
            continue
        rule = alerts.rule_for(scope.kind, scope.id, limit)
        if rule is not None:
            yield limit, amount, rule


def reached(alerts: AlertsFile, scope: Scope, use: LimitsUse) -> list[Reached]:
    """Every threshold reached now by a watched limit of `scope`, lowest first."""
    found: list[Reached] = []
    for limit, amount, rule in watched(alerts, scope):
        quota = use.get(limit)
        if quota is None:  # a limiter that does not report budgets
            continue
        used = quota["used"]
        for threshold in rule.thresholds:
            if used * 100 < threshold * amount:
                break  # thresholds are sorted
            found.append(
                Reached(
                    scope,
                    limit,
                    threshold,
                    used,
                    amount,
                    quota["period"],
                    quota["resets_at"],
                    rule,
                )
            )
    return found
