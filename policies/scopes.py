"""What a request counts against: its key, the key's team and each ancestor team.

Scopes are compiled once per policy snapshot (a team's scope is shared by all its keys), so
admission only walks a short tuple. A scope's `id` is where its counts are kept (Redis keys,
the usage store): the key id for a key, `team:NAME` for a team. Key ids cannot hold a ':',
so the two never collide.

A scope has enforced limits and shadow limits (`enforce: shadow`, or a `shadow:` block). Both
read the same counters, which belong to the scope and the kind of limit (its request window,
token window, in-flight set, day and month totals), never to the mode: a limit switched from
shadow to enforced finds everything it counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from policies.models import MICROS_PER_USD, Limits

ScopeKind = Literal["key", "team"]
TEAM_PREFIX = "team:"
LimitName = Literal[
    "rpm",
    "tpm",
    "max_concurrency",
    "tokens_per_day",
    "tokens_per_month",
    "usd_per_day",
    "usd_per_month",
]
REFUSAL_ORDER: tuple[LimitName, ...] = (
    "tokens_per_month",
    "tokens_per_day",
    "usd_per_month",
    "usd_per_day",
    "rpm",
    "tpm",
    "max_concurrency",
)
"""The order limits are checked in; a refusal names the first one exceeded."""


def usd_micros(usd: Decimal | None) -> int | None:
    """US dollars as integer micro-dollars (the policy allows at most 6 decimals: exact)."""
    return None if usd is None else int(usd * MICROS_PER_USD)


@dataclass(frozen=True, slots=True)
class Scope:
    """One counter set a request is admitted against and settled into."""

    id: str
    """Where its counts are kept: the key id, or `team:NAME`."""
    kind: ScopeKind
    name: str
    limits: Limits
    """The enforced limits (a plain block: no `enforce`, no `shadow`)."""
    usd_per_day: int | None
    """The daily budget in micro-dollars (None: none)."""
    usd_per_month: int | None
    checked: bool
    """It has a limit or budget (enforced or shadow), so admission reads and counts it."""
    shadow: Limits | None = None
    """The shadow limits (a plain block), None when there are none."""
    shadow_usd_per_day: int | None = None
    shadow_usd_per_month: int | None = None
    counts_requests: bool = False
    """It has an rpm (either mode): its request window counts."""
    counts_tokens: bool = False
    """It has a tpm (either mode): its token window counts, with reservations."""
    shadow_checks: tuple[tuple[LimitName, int], ...] = ()
    """The shadow limits as admission compares them, in REFUSAL_ORDER (micro-dollars for
    budgets)."""

    @property
    def label(self) -> str:
        """How refusals and reports name it: key 'k', team 'search'."""
        return f"{self.kind} '{self.name}'"


def _any_limit(limits: Limits) -> bool:
    return any(
        value is not None
        for value in (
            limits.rpm,
            limits.tpm,
            limits.max_concurrency,
            limits.tokens_per_day,
            limits.tokens_per_month,
            limits.usd_per_day,
            limits.usd_per_month,
        )
    )


def scope_of(kind: ScopeKind, name: str, limits: Limits) -> Scope:
    """`limits` as written (or merged): split into the enforced and the shadow limits."""
    enforced, shadowed = limits.split()
    shadow = shadowed if _any_limit(shadowed) else None
    day, month = usd_micros(enforced.usd_per_day), usd_micros(enforced.usd_per_month)
    checked = _any_limit(enforced) or shadow is not None
    scope_id = name if kind == "key" else TEAM_PREFIX + name
    shadow_day = usd_micros(shadow.usd_per_day) if shadow else None
    shadow_month = usd_micros(shadow.usd_per_month) if shadow else None
    checks: list[tuple[LimitName, int]] = []
    for limit in REFUSAL_ORDER if shadow is not None else ():
        value = (
            shadow_day
            if limit == "usd_per_day"
            else shadow_month
            if limit == "usd_per_month"
            else getattr(shadow, limit)
        )
        if value is not None:
            checks.append((limit, value))
    return Scope(
        scope_id,
        kind,
        name,
        enforced,
        day,
        month,
        checked,
        shadow,
        shadow_day,
        shadow_month,
        enforced.rpm is not None or (shadow is not None and shadow.rpm is not None),
        enforced.tpm is not None or (shadow is not None and shadow.tpm is not None),
        tuple(checks),
    )


def key_scopes(key_id: str, limits: Limits) -> tuple[Scope, ...]:
    """The scopes of a key that belongs to no team."""
    return (scope_of("key", key_id, limits),)
