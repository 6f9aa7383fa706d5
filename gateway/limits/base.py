"""The limiter's interface: one call admits a request, one call settles it.

    admission = await limiter.admit(principal.scopes, estimated_prompt_tokens)
    ...                       # RateLimited / QuotaExhausted raised above: nothing was counted
    await limiter.settle(admission, used_tokens, cost_micros)   # in `finally`; idempotent

A request counts against several scopes (policies.scopes): its key, the key's team and each
ancestor team. It is admitted only if every scope admits it, and the check and the count are
one atomic step over all of them (no await in memory, one Lua script in Redis), so 20
simultaneous requests against a team's rpm 10 spread over 5 keys let exactly 10 through. A
refusal names the first scope that refuses, in that order (key, team, parent...).

State is keyed by scope id, never by the Limits object: a policy commit that changes a
scope's limits applies them at the next `admit`, and the counts so far are kept.

Quotas (tokens_per_day, tokens_per_month) admit while settled use is below the quota; tpm
admits while the window's tokens (settled, plus the prompt estimates of requests in
flight) plus this prompt's estimate stay within tpm. Everything counts total tokens.

USD budgets (usd_per_day, usd_per_month; integer micro-dollars) work like quotas: a request is
admitted while the period's settled spend is below the budget, and its cost is added at
settlement. So requests in flight when the budget is reached all finish and are all charged:
a scope may overshoot its budget by what is in flight, at most max_concurrency requests' cost
(set max_concurrency to bound it). Spend is exact across workers and gateways sharing one
Redis, and survives restarts as token quotas do (the usage store; a kill -9 loses at most the
last second of unwritten spend when Redis is not used).

Shadow limits (`enforce: shadow`, or a `shadow:` block beside enforced limits) are checked in
the same atomic step, once every enforced limit has admitted the request: the request is
served anyway, and the shadow limits it exceeds are named on the Admission (`shadow`) and
counted as would-be refusals of the scope (today, this month). They read the very counters
the enforced limits read, kept by scope and kind of limit, never by mode: a request served
past a shadow limit is counted in its windows and quotas like any served request, because it
was served. So a switch to `enforce: on` (or moving a value out of a `shadow:` block) finds
the scope's request and token windows, in-flight requests, day and month tokens and spend as
they are, and the newly enforced limit refuses from its very next check. Only the would-be
refusal counts are about the mode, and they are kept apart as a report. One consequence:
under sustained overload a shadow rpm or tpm reports more refusals than enforcing it would
refuse (enforced, the refused requests would not have been counted and the window would
drain sooner); quotas and budgets report exactly the requests enforcement would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import Unavailable
from gateway.payloads import FailMode as FailMode  # re-exported: tests import it from here
from gateway.payloads import LimiterStatus, LimitsUse
from policies.models import Limits
from policies.scopes import Scope

Clock = Callable[[], float]
"""Seconds since the Unix epoch (time.time); injectable so tests move time without sleeping."""

FAIL_MODES: tuple[FailMode, ...] = ("fail-open", "fail-closed")


@dataclass(slots=True)
class Admission:
    """One admitted request; hand it back to `settle` exactly once (more calls are no-ops)."""

    scopes: tuple[Scope, ...]
    """The scopes it counts against, with the limits they had at admission."""
    reserved_tokens: int
    """Tokens reserved in the tpm windows at admission (the prompt estimate; 0 without tpm)."""
    headers: dict[str, str] = field(default_factory=dict)
    """x-ratelimit-* headers for the response (empty when no scope has rpm or tpm)."""
    checked: bool = False
    """Some scope has limits; False is the fast path (nothing counted until settlement)."""
    token_second: int = 0
    """The window second that holds the reservation."""
    ticket: str = ""
    """Redis: this request's member in the key's in-flight set."""
    holds_slot: bool = False
    """It counts as in flight until settled."""
    degraded: bool = False
    """Admitted unchecked because the limits store was unreachable (fail-open)."""
    settled: bool = False
    shadow: tuple[tuple[str, str], ...] = ()
    """(scope id, limit name) of each shadow limit that would have refused it, in scope
    order (key, team, parent...), each scope's in checking order; empty when none would."""

    @property
    def key_id(self) -> str:
        return self.scopes[0].name


class Limiter(Protocol):
    async def admit(self, scopes: Sequence[Scope], estimated_tokens: int) -> Admission:
        """Check every limit of every scope and count the request in all, atomically.

        `scopes`: the key's first, then its team and each ancestor (Principal.scopes).
        Raises QuotaExhausted (a day/month token quota or USD budget spent) or RateLimited
        (rpm, tpm, concurrency), naming the first scope that refuses; a refused request is
        counted nowhere. The Redis limiter in fail-closed mode raises LimiterUnavailable
        while Redis is unreachable.
        """
        ...

    def settled_at_once(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> bool:
        """`settle` without a coroutine when this limiter needs no I/O for it (in memory):
        True when done; False when `settle` must be awaited instead (Redis)."""
        ...

    async def settle(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> None:
        """Count the tokens really used (prompt + completion) and the cost (micro-dollars)
        in every scope, and free the in-flight slots.

        `cost_micros` None means the price is unknown: no spend is counted for the request
        (its tokens still are), so an unpriced model never uses up a USD budget.
        Never raises; a second call for the same admission does nothing.
        """
        ...

    def usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        """Current use of one scope (a key id, or team:NAME) against limits, from this
        process's view (no IO)."""
        ...

    async def fetch_usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        """Current use against limits, read from the store of record (Redis when shared)."""
        ...

    def status(self) -> LimiterStatus: ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop background work and flush recorded usage."""
        ...


class LimiterUnavailable(Unavailable):
    """fail-closed: limits cannot be checked, so the request is refused."""

    code = "rate_limiter_unavailable"
    kind = "limiter_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Rate limits cannot be checked right now (the limits store is unreachable). "
            "Retry in a few seconds.",
            headers={"Retry-After": "1"},
        )
