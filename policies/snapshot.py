"""A policy commit compiled for serving: keys indexed by hash, routes with compiled globs.

A Snapshot is immutable and swapped by one reference assignment; a request keeps the
snapshot it started with until it ends. Lookups cost the same with 10 or 10,000 keys.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from gateway.pricing import Price, PriceBook
from policies.model_globs import compile_any, compile_glob, is_glob
from policies.models import Key, Limits, Policy, Provider, Route, WeightedTarget
from policies.scopes import Scope, scope_of


@dataclass(frozen=True, slots=True)
class Target:
    """One place a route can send a request: a provider and the model name it knows."""

    provider_name: str
    provider: Provider
    upstream_model: str
    weight: float = 1.0
    price: Price | None = None
    """Compiled from prices.yaml or the genai-prices catalog; None: no known price."""

    @property
    def label(self) -> str:
        return f"{self.provider_name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """A route matched for one requested model name."""

    name: str
    """The route's name as written in routes.yaml (a glob for glob routes)."""
    model: str
    """The model name the client asked for."""
    route: Route
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a client key, as the policy describes it."""

    key_id: str
    owner: str | None
    limits: Limits
    model_patterns: re.Pattern[str] | None
    expires: dt.date | None
    disabled: bool
    team: str | None = None
    scopes: tuple[Scope, ...] = ()
    """What its requests count against: the key, then its team and each ancestor team."""
    ceilings: tuple[re.Pattern[str], ...] = ()
    """The `models` of its team and every ancestor that limits them: all must match too."""

    def may_use(self, route_name: str) -> bool:
        patterns = self.model_patterns
        if patterns is not None and patterns.fullmatch(route_name) is None:
            return False
        return all(ceiling.fullmatch(route_name) is not None for ceiling in self.ceilings)

    def is_expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    admin_id: str
    disabled: bool


class _Memo:
    """Per-compile caches: thousands of keys share a few glob lists and limit sets."""

    def __init__(self) -> None:
        self.globs: dict[tuple[str, ...] | None, re.Pattern[str] | None] = {}
        self.limits: dict[tuple[str | None, Limits | None], Limits] = {}
        self.teams: dict[str, tuple[tuple[Scope, ...], tuple[re.Pattern[str], ...]]] = {}

    def team(
        self, name: str, policy: Policy
    ) -> tuple[tuple[Scope, ...], tuple[re.Pattern[str], ...]]:
        """The scopes (the team, then each ancestor) and model ceilings of a team."""
        found = self.teams.get(name)
        if found is None:
            scopes: list[Scope] = []
            ceilings: list[re.Pattern[str]] = []
            current: str | None = name
            while current is not None and len(scopes) <= len(policy.teams):  # no cycle passes
                team = policy.teams[current]  # the loader refused unknown teams and cycles
                scopes.append(scope_of("team", current, team.limits))
                if team.models is not None:
                    if team.models not in self.globs:
                        self.globs[team.models] = compile_any(team.models)
                    pattern = self.globs[team.models]
                    assert pattern is not None
                    ceilings.append(pattern)
                current = team.parent
            found = self.teams[name] = (tuple(scopes), tuple(ceilings))
        return found


def _principal(key: Key, policy: Policy, memo: _Memo) -> Principal:
    limits = memo.limits.get((key.tier, key.limits))
    if limits is None:
        tier = policy.limits.tiers.get(key.tier, policy.limits.default) if key.tier else None
        base = tier if tier is not None else policy.limits.default
        limits = key.limits.merged_over(base) if key.limits else base
        memo.limits[(key.tier, key.limits)] = limits
    if key.models not in memo.globs:
        memo.globs[key.models] = None if key.models is None else compile_any(key.models)
    team_scopes, ceilings = memo.team(key.team, policy) if key.team is not None else ((), ())
    return Principal(
        key_id=key.id,
        owner=key.owner,
        limits=limits,
        model_patterns=memo.globs[key.models],
        expires=key.expires,
        disabled=key.disabled,
        team=key.team,
        scopes=(scope_of("key", key.id, limits), *team_scopes),
        ceilings=ceilings,
    )


@dataclass(frozen=True)
class Snapshot:
    """A validated policy commit, compiled for O(1) lookups on the request path."""

    commit: str
    policy: Policy
    principals_by_hash: dict[str, Principal]
    admins_by_hash: dict[str, AdminPrincipal]
    exact_routes: dict[str, Route]
    glob_routes: tuple[tuple[re.Pattern[str], str, Route], ...]
    _resolved: dict[str, ResolvedRoute | None] = field(default_factory=dict, repr=False)
    prices: PriceBook = field(default_factory=lambda: PriceBook({}, catalog=False), repr=False)

    @classmethod
    def compile(cls, policy: Policy, commit: str) -> Snapshot:
        memo = _Memo()
        principals = {
            k.hash.removeprefix("sha256:"): _principal(k, policy, memo) for k in policy.keys
        }
        admins = {
            a.hash.removeprefix("sha256:"): AdminPrincipal(a.id, a.disabled) for a in policy.admins
        }
        exact = {n: r for n, r in policy.routes.items() if not is_glob(n)}
        globs = tuple((compile_glob(n), n, r) for n, r in policy.routes.items() if is_glob(n))
        snapshot = cls(
            commit, policy, principals, admins, exact, globs, prices=PriceBook(policy.prices)
        )
        snapshot._price_literal_targets()
        return snapshot

    def _price_literal_targets(self) -> None:
        """Price every target whose upstream model is known before a request names one (a
        glob route's `*` targets are priced when a model name resolves, once each)."""
        for name, route in self.policy.routes.items():
            for spec in route.targets:
                text = spec.target if isinstance(spec, WeightedTarget) else spec
                provider_name, _, upstream_model = text.partition("/")
                provider = self.policy.providers.get(provider_name)
                if provider is not None and not (is_glob(name) and "*" in upstream_model):
                    self.prices.price(provider_name, provider, upstream_model)

    def unpriced_targets(self) -> list[str]:
        """`provider/model` of the targets priced so far that have no known price."""
        return self.prices.unpriced()

    def principal(self, key_sha256_hex: str) -> Principal | None:
        return self.principals_by_hash.get(key_sha256_hex)

    def admin(self, token_sha256_hex: str) -> AdminPrincipal | None:
        return self.admins_by_hash.get(token_sha256_hex)

    def resolve(self, model: str) -> ResolvedRoute | None:
        """The route for a requested model: an exact name first, then globs in file order."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        resolved = self._resolve_uncached(model)
        if len(self._resolved) < 4096:  # bounded: model names come from clients
            self._resolved[model] = resolved
        return resolved

    def _resolve_uncached(self, model: str) -> ResolvedRoute | None:
        route = self.exact_routes.get(model)
        if route is not None:
            return ResolvedRoute(model, model, route, self._targets(route, None))
        for pattern, name, glob_route in self.glob_routes:
            match = pattern.fullmatch(model)
            if match is None:
                continue
            # What the first `*` matched (never holding a `/`); a glob without one gives the name.
            star = match.group(1) if pattern.groups else model
            return ResolvedRoute(name, model, glob_route, self._targets(glob_route, star))
        return None

    def _targets(self, route: Route, star: str | None) -> tuple[Target, ...]:
        out: list[Target] = []
        for spec in route.targets:
            text, weight = (
                (spec.target, spec.weight)
                if isinstance(spec, WeightedTarget)
                else (
                    spec,
                    1.0,
                )
            )
            provider_name, _, upstream_model = text.partition("/")
            if star is not None:
                upstream_model = upstream_model.replace("*", star)
            provider = self.policy.providers.get(provider_name)
            if provider is None:  # refused by validation; kept defensive for old snapshots
                continue
            price = self.prices.price(provider_name, provider, upstream_model)
            out.append(Target(provider_name, provider, upstream_model, weight, price))
        return tuple(out)

    def route_names_for(self, principal: Principal) -> list[str]:
        """Exact route names the principal may use, in file order (for model lists)."""
        return [n for n in self.exact_routes if principal.may_use(n)]
