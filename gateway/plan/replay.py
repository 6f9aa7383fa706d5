"""Recorded requests replayed through one policy, with the gateway's own limiter.

How windows are simulated: not at all, separately. Each policy gets a live `MemoryLimiter`
(the class `modelgate serve` runs without Redis) whose injected clock reads the trace's
time. A request is admitted at its recorded arrival (`ts`) with its recorded prompt tokens
as the estimate, and settled at its recorded end (`ts + latency`) with its recorded tokens
and its cost at this policy's prices. Settlements due at or before an arrival are applied
first, in end order. So the sliding 60-second windows (rpm, tpm), the in-flight counts
(max_concurrency) and the UTC day and month totals (quotas, budgets) are the limiter's own
code over the same sequence of calls: the result equals the live limiter's by construction
(tests/plan/test_equivalence.py runs a trace through both). The limiter is built without
x-ratelimit headers and asked with `try_admit_now`, which returns the refusing scope and limit
instead of raising a 429: the same check and count, minus the text nobody here reads.

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
from gateway.limits.base import Admission
from gateway.limits.memory import MemoryLimiter, Refused
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

ShadowHits = tuple[tuple[str, str], ...]
"""(scope id, limit) of each shadow limit an admitted request exceeded (Admission.shadow)."""
_NO_HITS: ShadowHits = ()


@dataclass(slots=True)
class _Gate:
    """What the policy says of one (key, model) before admission, computed once."""

    refused: Refusal | None
    principal: Principal | None
    route: ResolvedRoute | None
    settles: bool = False
    """Some scope counts what settlement changes (tpm, concurrency, quotas, budgets, enforced
    or shadow); an rpm-only key's settlement changes nothing a later admission reads, so it
    is skipped."""
    charges: dict[str | None, Charge] = field(default_factory=dict)
    """By the recorded target label: how this policy would charge it."""


class _TraceClock:
    """The limiter's clock: the time of the trace event being replayed."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PolicyReplay:
    """One policy's view of a trace, fed row by row in arrival order."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.clock = _TraceClock()
        self.limiter = MemoryLimiter(None, clock=self.clock, headers=False)
        """The live limiter, no store: counts start at zero with the trace."""
        self._admit = self.limiter.try_admit_now
        self._refusals: dict[tuple[str, str], Refusal] = {}
        """429s by (scope id, limit)."""
        self._principals = {p.key_id: p for p in snapshot.principals_by_hash.values()}
        self._gates: dict[tuple[str, str], _Gate] = {}
        self._due: list[tuple[float, int, Admission, int, int | None]] = []
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
        gate = self._gates.get((key_id, model))
        if gate is None:
            gate = self._gates[(key_id, model)] = self._gate(key_id, model)
        if gate.refused is not None:
            return gate.refused, None, _NO_HITS
        principal = gate.principal
        assert principal is not None
        if principal.expires is not None and self._date(ts) > principal.expires:
            return _KEY_EXPIRED, None, _NO_HITS
        self.clock.now = ts
        prompt, completion = row.prompt_tokens, row.completion_tokens
        admission = self._admit(principal.scopes, prompt)
        if isinstance(admission, Refused):
            return self._refusal(admission.scope, admission.limit), None, _NO_HITS
        target = row.target
        try:
            charge = gate.charges[target]
        except KeyError:
            charge = gate.charges[target] = charge_of(_price_of(gate.route, target))
        cost = cost_of(charge, prompt, completion)
        tokens = prompt + completion
        if gate.settles:
            self._seq += 1
            heapq.heappush(due, (ts + row.latency_ms / 1000.0, self._seq, admission, tokens, cost))
        return None, cost, admission.shadow

    def _refusal(self, scope: Scope, limit: str) -> Refusal:
        found = self._refusals.get((scope.id, limit))
        if found is None:
            found = self._refusals[(scope.id, limit)] = refusal(429, limit, scope.label)
        return found

    def settle_until(self, until: float) -> None:
        """Settle every admitted request that ended at or before `until`, in end order."""
        due, clock, settle = self._due, self.clock, self.limiter.settle_now
        while due and due[0][0] <= until:
            end, _, admission, tokens, cost = heapq.heappop(due)
            clock.now = end
            settle(admission, tokens, cost)

    def finish(self) -> None:
        """Settle what is still in flight at the end of the trace."""
        self.settle_until(float("inf"))

    def _gate(self, key_id: str, model: str) -> _Gate:
        principal = self._principals.get(key_id)
        if principal is None:
            return _Gate(_KEY_REMOVED, None, None)
        if principal.disabled:
            return _Gate(_KEY_DISABLED, principal, None)
        route = self.snapshot.resolve(model)
        if route is None or not route.targets:
            return _Gate(_ROUTE_GONE, principal, None)
        if not (principal.may_use(model) or principal.may_use(route.name)):
            return _Gate(_NOT_ALLOWED, principal, route)
        try:
            route = routable(route)
        except BadRequest:
            return _Gate(_ROUTE_UNUSABLE, principal, route)
        return _Gate(None, principal, route, settles=any(map(_settlement_counts, principal.scopes)))

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
