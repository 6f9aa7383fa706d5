"""The in-process limiter: exact within one event loop, quotas and spend persisted to SQLite.

Exactness: `admit` never awaits between reading the counters of every scope (key, team,
ancestors) and counting the request in all of them, so on one event loop no two admissions
interleave; 20 simultaneous requests against rpm 10 (a key's or a team's) let exactly 10
through. Memory per scope is constant: two 60-bucket windows and a few ints.
Shadow limits are checked in the same step, after the enforced ones have admitted the
request, against the same counters (see base.py); what they would refuse is recorded on the
Admission and in the scope's would-be refusal counts (today and this month; in memory only,
so a restart forgets them: the request log keeps every served request's `shadow`).
Day and month totals (tokens, requests, micro-dollars) are loaded from the usage store on
start (a restart resumes where it was) and every settlement is recorded there (batched, off
the request path; a kill -9 loses at most the last second of it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from gateway.errors import RateLimited
from gateway.limits import refusals
from gateway.limits.base import Admission, Clock
from gateway.limits.periods import PeriodCache, Periods, periods_at
from gateway.limits.report import UseCounts, usage_report
from gateway.limits.window import SlidingWindow
from gateway.payloads import FailMode, LimiterStatus, LimitsUse
from gateway.usage.store import UsageStore
from policies.models import Limits
from policies.scopes import LimitName, Scope


@dataclass(slots=True)
class _ScopeUse:
    """Everything counted for one scope id (kept across policy reloads)."""

    requests: SlidingWindow | None = None
    tokens: SlidingWindow | None = None
    in_flight: int = 0
    day: str = ""
    day_tokens: int = 0
    day_requests: int = 0
    day_micros: int = 0
    month: str = ""
    month_tokens: int = 0
    month_requests: int = 0
    month_micros: int = 0
    day_shadow: dict[str, int] | None = None
    """Would-be refusals today by limit name (None: none yet)."""
    month_shadow: dict[str, int] | None = None

    def roll(self, periods: Periods) -> None:
        """Start from zero when a new UTC day or month has begun."""
        if self.day != periods.day:
            self.day, self.day_tokens, self.day_requests, self.day_micros = periods.day, 0, 0, 0
            self.day_shadow = None
        if self.month != periods.month:
            self.month, self.month_tokens, self.month_requests = periods.month, 0, 0
            self.month_micros = 0
            self.month_shadow = None

    def shadow_refused(self, limit: str) -> None:
        day = self.day_shadow = self.day_shadow or {}
        month = self.month_shadow = self.month_shadow or {}
        day[limit] = day.get(limit, 0) + 1
        month[limit] = month.get(limit, 0) + 1


class Refused(NamedTuple):
    """A refusal as `try_admit_now` returns it: the first scope and limit that refuse, and
    the state its 429 is built from (unchanged since: nothing was counted)."""

    scope: Scope
    limit: LimitName
    use: _ScopeUse
    now: float
    estimate: int


class MemoryLimiter:
    """Limits and budgets of every scope (keys and teams), counted in this process."""

    def __init__(
        self,
        store: UsageStore | None,
        *,
        fail_mode: FailMode = "fail-open",
        clock: Clock = time.time,
        headers: bool = True,
    ) -> None:
        """headers=False: admissions carry no x-ratelimit-* headers (`policy plan` replays
        millions of admissions and reads none); the counting is the same."""
        self._store = store
        self._fail_mode: FailMode = fail_mode
        self._clock = clock
        self._with_headers = headers
        self._periods = PeriodCache()
        self._keys: dict[str, _ScopeUse] = {}
        """By scope id: a key id, or team:NAME."""

    async def start(self) -> None:
        if self._store is None:
            return
        await asyncio.to_thread(self._store.open)
        periods = self._periods.at(self._clock())
        totals = await asyncio.to_thread(self._store.load_totals, periods.day, periods.month)
        for scope_id, total in totals.items():
            self._keys[scope_id] = _ScopeUse(
                day=periods.day,
                day_tokens=total.day_tokens,
                day_requests=total.day_requests,
                day_micros=total.day_cost_micros,
                month=periods.month,
                month_tokens=total.month_tokens,
                month_requests=total.month_requests,
                month_micros=total.month_cost_micros,
            )

    async def close(self) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.close)

    async def admit(self, scopes: Sequence[Scope], estimated_tokens: int) -> Admission:
        return self.admit_now(scopes, estimated_tokens)

    async def settle(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> None:
        self.settle_now(admission, used_tokens, cost_micros)

    def settled_at_once(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> bool:
        self.settle_now(admission, used_tokens, cost_micros)
        return True

    def admit_now(self, scopes: Sequence[Scope], estimated_tokens: int) -> Admission:
        """`admit` without the coroutine: checks every scope, then counts in every scope,
        with no await in between (so nothing interleaves on this event loop)."""
        admitted = self.try_admit_now(scopes, estimated_tokens)
        if type(admitted) is Admission:
            return admitted
        assert isinstance(admitted, Refused)
        raise _refusal(*admitted)  # nothing was counted anywhere

    def try_admit_now(self, scopes: Sequence[Scope], estimated_tokens: int) -> Admission | Refused:
        """`admit_now` returning the refusal (scope and limit) instead of raising its 429:
        the same check and count, without building an error nobody reads (`policy plan`)."""
        checked: list[tuple[Scope, _ScopeUse]] = []
        now = 0.0
        estimate = max(0, estimated_tokens)
        reserve = shadowed = False
        for scope in scopes:
            if not scope.checked:
                continue
            if not checked:
                now = self._clock()
            use = self._keys.get(scope.id)
            if use is None:
                use = self._keys[scope.id] = _ScopeUse()
            limit = self._check(scope, use, now, estimate)
            if limit is not None:
                return Refused(scope, limit, use, now, estimate)
            checked.append((scope, use))
            reserve = reserve or scope.counts_tokens
            shadowed = shadowed or scope.shadow is not None
        if not checked:
            return Admission(tuple(scopes), 0)  # no limits: nothing to count until settlement
        hits: tuple[tuple[str, str], ...] = ()
        if shadowed:  # every enforced limit admits it: what would the shadow ones say?
            hits = self._shadow_hits(checked, now, estimate)
        sec = int(now)
        token_second = 0
        reserved = estimate if reserve else 0
        headers: dict[str, str] = {}
        with_headers = self._with_headers
        fewest_requests = fewest_tokens = -1
        for scope, use in checked:
            limits = scope.limits
            requests, tokens = use.requests, use.tokens
            if requests is not None and scope.counts_requests:
                requests.add(sec, 1)
            if with_headers and requests is not None and limits.rpm is not None:
                left = limits.rpm - requests.total
                if fewest_requests < 0 or left < fewest_requests:  # the tightest scope speaks
                    fewest_requests = max(0, left)
                    reset = requests.seconds_until_next_freed(now)
                    refusals.add_window_headers(
                        headers, "requests", limits.rpm, requests.total, reset
                    )
            if tokens is not None and scope.counts_tokens:
                token_second = tokens.add(sec, reserved)
            if with_headers and tokens is not None and limits.tpm is not None:
                left = limits.tpm - tokens.total
                if fewest_tokens < 0 or left < fewest_tokens:
                    fewest_tokens = max(0, left)
                    reset = tokens.seconds_until_next_freed(now)
                    refusals.add_window_headers(headers, "tokens", limits.tpm, tokens.total, reset)
            use.in_flight += 1
        return Admission(
            tuple(scopes), reserved, headers, True, token_second, "", True, shadow=hits
        )

    def _shadow_hits(
        self, checked: list[tuple[Scope, _ScopeUse]], now: float, estimate: int
    ) -> tuple[tuple[str, str], ...]:
        """(scope id, limit) of every shadow limit the request would exceed, counted as
        would-be refusals. The windows were advanced by `_check`."""
        hits: list[tuple[str, str]] = []
        periods = self._periods.at(now)
        for scope, use in checked:
            if scope.shadow is None:
                continue
            use.roll(periods)
            for limit, value in scope.shadow_checks:
                if _exceeds(limit, value, use, estimate):
                    hits.append((scope.id, limit))
                    use.shadow_refused(limit)
        return tuple(hits)

    def _check(self, scope: Scope, use: _ScopeUse, now: float, estimate: int) -> LimitName | None:
        """The first limit of `scope` the request would exceed (None: all admit it); the
        windows are advanced and the periods rolled, nothing is counted."""
        limits = scope.limits
        rpm, tpm, max_conc = limits.rpm, limits.tpm, limits.max_concurrency
        per_day, per_month = limits.tokens_per_day, limits.tokens_per_month
        usd_day, usd_month = scope.usd_per_day, scope.usd_per_month
        sec = int(now)
        requests = tokens = None
        if scope.counts_requests:
            requests = use.requests
            if requests is None:
                requests = use.requests = SlidingWindow()
            requests.advance(sec)
        if scope.counts_tokens:
            tokens = use.tokens
            if tokens is None:
                tokens = use.tokens = SlidingWindow()
            tokens.advance(sec)
        else:
            estimate = 0
        if (
            per_day is not None
            or per_month is not None
            or usd_day is not None
            or usd_month is not None
        ):
            use.roll(self._periods.at(now))
            if per_month is not None and use.month_tokens >= per_month:
                return "tokens_per_month"
            if per_day is not None and use.day_tokens >= per_day:
                return "tokens_per_day"
            if usd_month is not None and use.month_micros >= usd_month:
                return "usd_per_month"
            if usd_day is not None and use.day_micros >= usd_day:
                return "usd_per_day"
        if requests is not None and rpm is not None and requests.total >= rpm:
            return "rpm"
        if tokens is not None and tpm is not None and tokens.total + estimate > tpm:
            return "tpm"
        if max_conc is not None and use.in_flight >= max_conc:
            return "max_concurrency"
        return None

    def settle_now(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> None:
        """`settle` without the coroutine. An unknown cost (None) adds no spend."""
        if admission.settled:
            return
        admission.settled = True
        used = max(0, used_tokens)
        cost = max(0, cost_micros) if cost_micros is not None else 0
        now = self._clock()
        periods = self._periods.at(now)
        store = self._store
        for scope in admission.scopes:
            use = self._keys.get(scope.id)
            if use is None:
                use = self._keys[scope.id] = _ScopeUse()
            if admission.holds_slot and scope.checked and use.in_flight > 0:
                use.in_flight -= 1
            tokens = use.tokens
            if tokens is not None:  # the reservation becomes the real figure, counted now
                if scope.checked and scope.counts_tokens:
                    tokens.take_back(admission.token_second, admission.reserved_tokens)
                if used:
                    tokens.add(int(now), used)
            use.roll(periods)
            use.day_tokens += used
            use.day_requests += 1
            use.day_micros += cost
            use.month_tokens += used
            use.month_requests += 1
            use.month_micros += cost
            if store is not None:
                store.record(scope.id, periods.day, periods.month, used, 1, cost)

    def usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        now = self._clock()
        periods = self._periods.at(now)
        counts = UseCounts()
        use = self._keys.get(scope_id)
        if use is not None:
            use.roll(periods)
            if use.requests is not None:
                use.requests.advance(int(now))
                counts.rpm_used = use.requests.total
            if use.tokens is not None:
                use.tokens.advance(int(now))
                counts.tpm_used = use.tokens.total
            counts.in_flight = use.in_flight
            counts.day_tokens, counts.day_requests = use.day_tokens, use.day_requests
            counts.month_tokens, counts.month_requests = use.month_tokens, use.month_requests
            counts.day_micros, counts.month_micros = use.day_micros, use.month_micros
            counts.day_shadow = dict(use.day_shadow or {})
            counts.month_shadow = dict(use.month_shadow or {})
        return usage_report(scope_id, limits, periods, counts)

    async def fetch_usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        return self.usage(scope_id, limits)

    def status(self) -> LimiterStatus:
        error = self._store.error if self._store is not None else None
        return {
            "store": "memory",
            "state": "ok" if error is None else "degraded",
            "mode": self._fail_mode,
            "error": error,
        }

    def tracked_keys(self) -> int:
        """How many scopes hold state (memory grows with keys and teams, never requests)."""
        return len(self._keys)


def _exceeds(limit: LimitName, value: int, use: _ScopeUse, estimate: int) -> bool:
    """Would `limit` at `value` refuse the request now (the test `_check` makes)?"""
    if limit == "rpm":
        return use.requests is not None and use.requests.total >= value
    if limit == "tpm":
        return use.tokens is not None and use.tokens.total + estimate > value
    if limit == "max_concurrency":
        return use.in_flight >= value
    if limit == "tokens_per_day":
        return use.day_tokens >= value
    if limit == "tokens_per_month":
        return use.month_tokens >= value
    if limit == "usd_per_day":
        return use.day_micros >= value
    return use.month_micros >= value


def _refusal(
    scope: Scope, limit: LimitName, use: _ScopeUse, now: float, estimate: int
) -> RateLimited:
    """The 429 `_check` decided on (`limit` of `scope`), with its headers and wait."""
    limits = scope.limits
    rpm, tpm = limits.rpm, limits.tpm
    requests = use.requests if scope.counts_requests else None
    tokens = use.tokens if scope.counts_tokens else None
    if tokens is None:
        estimate = 0
    headers = _headers(rpm, requests, tpm, tokens, now)
    who = scope.label
    if limit in ("tokens_per_month", "tokens_per_day", "usd_per_month", "usd_per_day"):
        periods = periods_at(now)
        monthly = limit.endswith("month")
        period = "month" if monthly else "day"
        left = (periods.month_ends_at if monthly else periods.day_ends_at) - now
        if limit.startswith("tokens"):
            used = use.month_tokens if monthly else use.day_tokens
            quota = limits.tokens_per_month if monthly else limits.tokens_per_day
            assert quota is not None
            return refusals.quota_exhausted(who, period, used, quota, left, headers)
        spent = use.month_micros if monthly else use.day_micros
        budget = scope.usd_per_month if monthly else scope.usd_per_day
        assert budget is not None
        return refusals.budget_exhausted(who, period, spent, budget, left, headers)
    if limit == "rpm":
        assert rpm is not None and requests is not None
        wait = requests.seconds_until_freed(now, requests.total + 1 - rpm)
        return refusals.rpm_exceeded(who, rpm, wait, headers)
    if limit == "tpm":
        assert tpm is not None and tokens is not None
        wait = tokens.seconds_until_freed(now, tokens.total + estimate - tpm)
        return refusals.tpm_exceeded(who, tpm, estimate, wait, headers)
    max_conc = limits.max_concurrency
    assert max_conc is not None
    return refusals.concurrency_exceeded(who, max_conc, rpm is not None, headers)


def _headers(
    rpm: int | None,
    requests: SlidingWindow | None,
    tpm: int | None,
    tokens: SlidingWindow | None,
    now: float,
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if rpm is not None and requests is not None:
        reset = requests.seconds_until_next_freed(now)
        refusals.add_window_headers(headers, "requests", rpm, requests.total, reset)
    if tpm is not None and tokens is not None:
        reset = tokens.seconds_until_next_freed(now)
        refusals.add_window_headers(headers, "tokens", tpm, tokens.total, reset)
    return headers
