"""Recorded requests replayed through one policy, counted as the gateway's limiter counts.

How windows are simulated: each policy gets a `Counting` (counters.py), the in-memory
limiter's state and rules (gateway/limits/memory.py, what `modelgate serve` runs without
Redis) without what only a live gateway needs (headers, errors, a usage store). A request
is admitted at its recorded arrival (`ts`) with its recorded prompt tokens as the estimate,
and settled at its recorded end (`ts + latency`) with its recorded tokens and its cost at
this policy's prices. Settlements due at or before an arrival are applied first, in end
order. So the sliding 60-second windows (rpm, tpm: tokens and requests per whole second,
as the live SlidingWindow counts them), the in-flight counts (max_concurrency) and the UTC
day and month totals (quotas, budgets) see the same sequence of calls the live limiter
would. tests/plan/test_equivalence.py runs the same traces through this replay and through
the limiter `modelgate serve` builds and compares every request's refusal and shadow hits.

Shadow limits never refuse: a request they would refuse is admitted and counted like any
other, and `step` returns the (scope id, limit) of each one it exceeded.

Stages in the pipeline's order: key (401) → route (404 before 403) → allowlist (403) →
admission (429). Rows the gateway refused before routing (no key, a malformed body) are
not replayed.
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass, field

from gateway.errors import BadRequest
from gateway.plan.counters import NO_HITS, Admitted, Counting, ScopeCheck, ShadowHits
from gateway.plan.refusals import Refusal, refusal
from gateway.plan.trace import TraceRow
from gateway.pricing import Price
from gateway.upstream.endpoints import routable
from gateway.usage.tokens import Usage
from policies.models import Limits
from policies.scopes import Scope
from policies.snapshot import Principal, ResolvedRoute, Snapshot

NOT_REPLAYED_ERRORS = frozenset({"bad_request", "unsupported", "too_large", "auth", "not_ready"})
"""Refusals that happen before routing: the policy under test cannot change them."""

_KEY_REMOVED = refusal(401, "key_removed")
_KEY_DISABLED = refusal(401, "key_disabled")
_KEY_EXPIRED = refusal(401, "key_expired")
_ROUTE_GONE = refusal(404, "route_gone")
_ROUTE_UNUSABLE = refusal(400, "route_unusable")
_NOT_ALLOWED = refusal(403, "model_not_allowed")


def replayable(row: TraceRow) -> bool:
    return row.key_id is not None and row.model is not None and row.error not in NOT_REPLAYED_ERRORS


Charge = tuple[int, int, Price] | Price | None
"""A target's price as the replay charges it: a flat price with its (input, output) rates in
pico-dollars per token first (see `cost_of`), a tiered one as is, None when unknown."""
_PICO_PER_MICRO = 1_000_000
_HALF_MICRO = _PICO_PER_MICRO // 2


@dataclass(slots=True)
class _Gate:
    """What the policy says of one (key, model) before admission, computed once."""

    refused: Refusal | None
    route: ResolvedRoute | None
    expires: dt.date | None = None
    checks: tuple[ScopeCheck, ...] = ()
    """The principal's checked scopes, with their counts."""
    settles: bool = False
    """Some scope counts what settlement changes (tpm, concurrency, quotas, budgets, enforced
    or shadow); an rpm-only key's settlement changes nothing a later admission reads, so it
    is skipped."""
    charges: dict[str | None, Charge] = field(default_factory=dict)
    """By the recorded target label: how this policy would charge it."""


class PolicyReplay:
    """One policy's view of a trace, fed row by row in arrival order."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.counting = Counting()
        """The limiter's counts for this policy: they start at zero with the trace."""
        self._principals = {p.key_id: p for p in snapshot.principals_by_hash.values()}
        self._gates: dict[str, dict[str, _Gate]] = {}
        """By key id, then model."""
        self._due: list[tuple[float, int, _Gate, Admitted, int, int | None]] = []
        """Admitted requests by end time: settled when the trace reaches it."""
        self._seq = 0
        self._today = (0.0, 0.0, dt.date(1970, 1, 1))

    def principal(self, key_id: str) -> Principal | None:
        return self._principals.get(key_id)

    def step(self, row: TraceRow) -> tuple[Refusal | None, int | None, ShadowHits]:
        """Replay one row: (its refusal or None, the cost charged when admitted (None when
        the target has no known price), the shadow limits it exceeded when admitted). Rows
        must come in arrival order."""
        ts = row.ts
        due = self._due
        if due and due[0][0] <= ts:
            self.settle_until(ts)
        key_id, model = row.key_id, row.model
        assert key_id is not None and model is not None  # replayable() rows only
        gates = self._gates.get(key_id)
        if gates is None:
            gates = self._gates[key_id] = {}
        gate = gates.get(model)
        if gate is None:
            gate = gates[model] = self._gate(key_id, model)
        if gate.refused is not None:
            return gate.refused, None, NO_HITS
        if gate.expires is not None and self._date(ts) > gate.expires:
            return _KEY_EXPIRED, None, NO_HITS
        prompt = row.prompt_tokens
        admitted = self.counting.admit(gate.checks, prompt, ts)
        if type(admitted) is Refusal:
            return admitted, None, NO_HITS
        assert type(admitted) is tuple
        target = row.target
        try:
            charge = gate.charges[target]
        except KeyError:
            charge = gate.charges[target] = charge_of(_price_of(gate.route, target))
        completion = row.completion_tokens
        if type(charge) is tuple and prompt >= 0 and completion >= 0:  # cost_of, inlined
            cost: int | None = (
                prompt * charge[0] + completion * charge[1] + _HALF_MICRO
            ) // _PICO_PER_MICRO
        else:
            cost = cost_of(charge, prompt, completion)
        if gate.settles:
            self._seq += 1
            end = ts + row.latency_ms / 1000.0
            heapq.heappush(due, (end, self._seq, gate, admitted, prompt + completion, cost))
        return None, cost, admitted[2]

    def settle_until(self, until: float) -> None:
        """Settle every admitted request that ended at or before `until`, in end order."""
        due, settle = self._due, self.counting.settle
        while due and due[0][0] <= until:
            end, _, gate, admitted, tokens, cost = heapq.heappop(due)
            settle(gate.checks, admitted, tokens, cost, end)

    def finish(self) -> None:
        """Settle what is still in flight at the end of the trace."""
        self.settle_until(float("inf"))

    def _gate(self, key_id: str, model: str) -> _Gate:
        principal = self._principals.get(key_id)
        if principal is None:
            return _Gate(_KEY_REMOVED, None)
        if principal.disabled:
            return _Gate(_KEY_DISABLED, None)
        route = self.snapshot.resolve(model)
        if route is None or not route.targets:
            return _Gate(_ROUTE_GONE, None)
        if not (principal.may_use(model) or principal.may_use(route.name)):
            return _Gate(_NOT_ALLOWED, route)
        try:
            route = routable(route)
        except BadRequest:
            return _Gate(_ROUTE_UNUSABLE, route)
        return _Gate(
            None,
            route,
            principal.expires,
            self.counting.checks_of(principal.scopes),
            settles=any(map(_settlement_counts, principal.scopes)),
        )

    def _date(self, ts: float) -> dt.date:
        start, end, day = self._today
        if not start <= ts < end:
            day = dt.datetime.fromtimestamp(ts, dt.UTC).date()
            start = ts - ts % 86400
            self._today = (start, start + 86400, day)
        return day


def _settlement_counts(scope: Scope) -> bool:
    return scope.checked and (
        _settled_limits(scope.limits)
        or scope.usd_per_day is not None
        or scope.usd_per_month is not None
        or (scope.shadow is not None and _settled_limits(scope.shadow))
    )


def _settled_limits(limits: Limits) -> bool:
    """Some limit reads what settlement changes (tokens, slots, day and month totals)."""
    return (
        limits.tpm is not None
        or limits.max_concurrency is not None
        or limits.tokens_per_day is not None
        or limits.tokens_per_month is not None
        or limits.usd_per_day is not None
        or limits.usd_per_month is not None
    )


def charge_of(price: Price | None) -> Charge:
    if price is None or price.tiers:
        return price
    return price.rates.input, price.rates.output, price


def cost_of(charge: Charge, prompt: int, completion: int) -> int | None:
    """Price.cost_micros of a usage of prompt and completion tokens only (the request log
    records no cache or reasoning split), without building a Usage: a flat price's cost is
    two multiplies, rounded half up to micro-dollars as cost_micros rounds it."""
    if charge is None:
        return None
    if type(charge) is tuple:
        input_rate, output_rate, price = charge
        if prompt >= 0 and completion >= 0:
            pico = prompt * input_rate + completion * output_rate
            return (pico + _PICO_PER_MICRO // 2) // _PICO_PER_MICRO
        return price.cost_micros(Usage(prompt, completion))
    assert isinstance(charge, Price)
    return charge.cost_micros(Usage(prompt, completion))


def _price_of(route: ResolvedRoute | None, recorded_target: str | None) -> Price | None:
    """The price of the target that would serve it: the recorded one when this policy's route
    still has it, else the route's first target (fallback's primary)."""
    if route is None or not route.targets:
        return None
    for target in route.targets:
        if target.label == recorded_target:
            return target.price
    return route.targets[0].price
