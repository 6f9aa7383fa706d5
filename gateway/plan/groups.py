"""Keys that OLD and NEW answer alike, so one replay serves both revisions.

A key's requests are answered from its principal (allowlist, expiry, disabled, scopes with
their limits), the routes and prices, and the counters of its scopes. Those counters are
shared: a team's scope counts every member's requests, so keys are grouped by the scopes
they share in either revision (a team or ancestor with limits: admission never reads the
counters of a scope without any). When routes, providers and prices
are unchanged and every key of a group has the same principal in both revisions, the group
sees the same calls in the same order in both, so the NEW answers are the OLD ones: the plan
replays such a group once (through OLD) and counts the answer for both.
"""

from __future__ import annotations

from policies.snapshot import Principal, Snapshot


def unchanged_keys(old: Snapshot, new: Snapshot) -> frozenset[str]:
    """Ids of the keys whose every request OLD and NEW answer alike (see the module)."""
    was, now = old.policy, new.policy
    if (was.routes, was.providers, was.prices) != (now.routes, now.providers, now.prices):
        return frozenset()  # a route, target or price can change any key's answer
    before = {p.key_id: p for p in old.principals_by_hash.values()}
    after = {p.key_id: p for p in new.principals_by_hash.values()}
    group: dict[str, str] = {}

    def root(node: str) -> str:
        while group.setdefault(node, node) != node:
            group[node] = group[group[node]]  # path halving
            node = group[node]
        return node

    for principals in (before, after):
        for principal in principals.values():
            first = root(principal.key_id)
            for scope in principal.scopes:
                if not scope.checked:
                    continue  # admission never reads it (a changed `checked` changes `_same`)
                other = root(scope.id)
                if other != first:
                    group[other] = first
    changed = {root(k) for k in before.keys() ^ after.keys()}
    changed |= {root(k) for k in before.keys() & after.keys() if not _same(before[k], after[k])}
    return frozenset(k for k in before.keys() & after.keys() if root(k) not in changed)


def _same(a: Principal, b: Principal) -> bool:
    return (a.model_patterns, a.ceilings, a.expires, a.disabled, a.scopes) == (
        b.model_patterns,
        b.ceilings,
        b.expires,
        b.disabled,
        b.scopes,
    )
