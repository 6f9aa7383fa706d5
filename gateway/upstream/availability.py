"""Which routes can serve right now: for model lists and the operators' status.

A route is unusable when none of its targets has a usable credential: every one was refused
by the upstream (401/403) or cannot be resolved (unset variable, missing file, a token
grant the server refused). A cooling credential still counts as usable: it recovers by
itself, and a request meanwhile gets a 503 with Retry-After, which is the honest answer.
"""

from __future__ import annotations

from credentials.pool import CredentialPools
from policies.models import Route, WeightedTarget
from policies.snapshot import Snapshot


def route_unusable(snapshot: Snapshot, route: Route, pools: CredentialPools) -> str | None:
    """None when some target of `route` can serve, else why none can."""
    reasons: list[str] = []
    for spec in route.targets:
        text = spec.target if isinstance(spec, WeightedTarget) else spec
        provider_name = text.partition("/")[0]
        provider = snapshot.policy.providers.get(provider_name)
        if provider is None:
            reasons.append(f"{text}: no such provider")
            continue
        why = pools.usable(provider_name, provider)
        if why is None:
            return None
        reasons.append(f"{text}: {why}")
    return "; ".join(reasons) or "no targets"


def unusable_routes(snapshot: Snapshot | None, pools: CredentialPools) -> dict[str, str]:
    """Route name -> why it cannot serve now (routes that can are left out)."""
    if snapshot is None:
        return {}
    out: dict[str, str] = {}
    for name, route in snapshot.policy.routes.items():
        why = route_unusable(snapshot, route, pools)
        if why is not None:
            out[name] = why
    return out
