"""Scope lists for limiter-level tests: a key in team `search`, whose parent is `org`."""

from __future__ import annotations

from policies.models import Limits
from policies.scopes import Scope, scope_of

UNLIMITED = Limits()


def team_scopes(
    key_id: str,
    key: Limits = UNLIMITED,
    search: Limits = UNLIMITED,
    org: Limits = UNLIMITED,
) -> tuple[Scope, ...]:
    return (
        scope_of("key", key_id, key),
        scope_of("team", "search", search),
        scope_of("team", "org", org),
    )


def usd(dollars: float) -> int:
    """Micro-dollars."""
    return round(dollars * 1_000_000)
