"""The live limiter's counting, specialised for replaying a trace (one policy, one thread).

`MemoryLimiter` (gateway/limits/memory.py) is built for a gateway: any clock, x-ratelimit
headers, an Admission object per request, a usage store, the would-be refusal report. A plan
replays millions of requests and reads none of that, and spent two thirds of its time in it.
This module keeps exactly the state the limiter's decisions read, and updates it by the
same rules, in the same order:

- per scope id (a key id, `team:NAME`): the request and token windows (only when the scope
  has an rpm, or a tpm, in either mode), the in-flight count, and the UTC day and month
  totals of tokens and micro-dollars (`PeriodCache` decides the day and month, as live);
- admission (`admit`): every checked scope is checked in scope order, each scope's limits in
  REFUSAL_ORDER (`MemoryLimiter._check`), the first exceeded one refuses and nothing is
  counted; else the shadow limits are compared (`_exceeds`), then the request is counted in
  every checked scope: one request, the prompt estimate reserved when any scope counts
  tokens, one in flight;
- settlement (`settle`): the slot is freed, the reservation taken back from the second it
  was counted in while that second is still in the window, the used tokens counted at the
  settlement's second, the tokens and cost added to the day and month totals.

A window is the limiter's SlidingWindow (units per whole second, a unit of second s counts
while the window's newest second is below s + 60, a clock that steps back counts in the
newest second) kept as a queue of (second, units) pairs instead of 60 buckets: most keys
send a request every few minutes, so the queue is usually empty or one pair long.

Unchecked scopes (no limit in either mode) are not counted: no check reads them. What the
plan reports is each request's refusal and shadow hits; tests/plan/test_equivalence.py runs
the same traces through this and through the gateway's own limiter and compares every one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from gateway.limits.periods import PeriodCache, Periods
from gateway.plan.refusals import Refusal, refusal
from policies.scopes import LimitName, Scope

WINDOW_S = 60

ShadowHits = tuple[tuple[str, str], ...]
"""(scope id, limit) of each shadow limit an admitted request exceeded (Admission.shadow)."""
NO_HITS: ShadowHits = ()


class Window:
    """SlidingWindow's count (gateway/limits/window.py): units of the last 60 whole seconds."""

    __slots__ = ("_seconds", "head", "total")

    def __init__(self) -> None:
        self._seconds: deque[list[int]] = deque()
        """[second, units], oldest first; seconds in (head - 60, head]."""
        self.head = 0
        """The newest second the window has advanced to."""
        self.total = 0

    def advance(self, sec: int) -> int:
        """Drop what slid out by second `sec`; returns the second now current (never earlier
        than the newest one seen)."""
        if sec <= self.head:
            return self.head
        self.head = sec
        seconds = self._seconds
        if seconds and seconds[0][0] <= sec - WINDOW_S:
            expired = sec - WINDOW_S
            total = self.total
            while seconds and seconds[0][0] <= expired:
                total -= seconds.popleft()[1]
            self.total = total
        return sec

    def add(self, sec: int, units: int) -> int:
        """Count `units` in second `sec`; returns the second they were counted in."""
        sec = self.advance(sec)
        if units > 0:
            seconds = self._seconds
            if seconds and seconds[-1][0] == sec:
                seconds[-1][1] += units
            else:
                seconds.append([sec, units])
            self.total += units
        return sec

    def put(self, units: int) -> None:
        """`add` at the newest second, when the window was just advanced to now."""
        seconds, head = self._seconds, self.head
        if seconds and seconds[-1][0] == head:
            seconds[-1][1] += units
        else:
            seconds.append([head, units])
        self.total += units

    def take_back(self, sec: int, units: int) -> None:
        """Remove up to `units` counted in second `sec`, if it is still in the window."""
        if units <= 0 or sec <= self.head - WINDOW_S:
            return
        for pair in reversed(self._seconds):
            if pair[0] == sec:
                taken = min(units, pair[1])
                pair[1] -= taken
                self.total -= taken
                return
            if pair[0] < sec:
                return


class ScopeCounts:
    """What is counted for one scope id (MemoryLimiter's _ScopeUse, minus the reports)."""

    __slots__ = (
        "day",
        "day_micros",
        "day_tokens",
        "in_flight",
        "month",
        "month_micros",
        "month_tokens",
        "requests",
        "tokens",
    )

    def __init__(self) -> None:
        self.requests: Window | None = None
        self.tokens: Window | None = None
        self.in_flight = 0
        self.day = self.month = ""
        self.day_tokens = self.day_micros = self.month_tokens = self.month_micros = 0


class ScopeCheck:
    """One checked scope of the policy with its counts and its limits, read once."""

    __slots__ = (
        "counts",
        "max_concurrency",
        "periodic",
        "refusals",
        "requests",
        "rpm",
        "scope",
        "shadow_checks",
        "tokens",
        "tokens_per_day",
        "tokens_per_month",
        "tpm",
        "usd_per_day",
        "usd_per_month",
    )

    def __init__(self, scope: Scope, counts: ScopeCounts) -> None:
        limits = scope.limits
        self.scope = scope
        self.counts = counts
        if scope.counts_requests and counts.requests is None:
            counts.requests = Window()
        if scope.counts_tokens and counts.tokens is None:
            counts.tokens = Window()
        self.requests = counts.requests if scope.counts_requests else None
        """The request window when this scope counts requests (it has an rpm)."""
        self.tokens = counts.tokens if scope.counts_tokens else None
        """The token window when this scope counts tokens (it has a tpm)."""
        self.rpm, self.tpm = limits.rpm, limits.tpm
        self.max_concurrency = limits.max_concurrency
        self.tokens_per_day, self.tokens_per_month = limits.tokens_per_day, limits.tokens_per_month
        self.usd_per_day, self.usd_per_month = scope.usd_per_day, scope.usd_per_month
        self.periodic = any(
            value is not None
            for value in (
                self.tokens_per_day,
                self.tokens_per_month,
                self.usd_per_day,
                self.usd_per_month,
            )
        )
        """Some enforced limit reads the day or month totals."""
        self.shadow_checks = scope.shadow_checks
        self.refusals: dict[str, Refusal] = {}

    def refused(self, limit: LimitName) -> Refusal:
        found = self.refusals.get(limit)
        if found is None:
            found = self.refusals[limit] = refusal(429, limit, self.scope.label)
        return found


Admitted = tuple[int, int, ShadowHits]
"""An admission: the tokens reserved, the second they were reserved in, the shadow hits."""
_UNCHECKED: Admitted = (0, 0, NO_HITS)


class Counting:
    """One policy's counts over a trace: admit at arrival, settle at the end, time ascending."""

    def __init__(self) -> None:
        self._counts: dict[str, ScopeCounts] = {}
        self._checks: dict[int, ScopeCheck] = {}
        """By id() of the Scope object (the policy snapshot keeps every one alive)."""
        self._periods = PeriodCache()

    def checks_of(self, scopes: Sequence[Scope]) -> tuple[ScopeCheck, ...]:
        """The checked scopes among a principal's, in order: what admission reads."""
        found: list[ScopeCheck] = []
        for scope in scopes:
            if not scope.checked:
                continue
            check = self._checks.get(id(scope))
            if check is None:
                counts = self._counts.get(scope.id)
                if counts is None:
                    counts = self._counts[scope.id] = ScopeCounts()
                check = self._checks[id(scope)] = ScopeCheck(scope, counts)
            found.append(check)
        return tuple(found)

    def admit(
        self, checks: tuple[ScopeCheck, ...], estimate: int, now: float
    ) -> Refusal | Admitted:
        """MemoryLimiter.try_admit_now: the first limit that refuses, or the request counted."""
        if not checks:
            return _UNCHECKED
        if estimate < 0:
            estimate = 0
        sec = int(now)
        periods: Periods | None = None
        shadowed = reserve = False
        for check in checks:
            counts = check.counts
            requests, tokens = check.requests, check.tokens
            if requests is not None and sec > requests.head:
                requests.advance(sec)
            if tokens is not None and sec > tokens.head:
                tokens.advance(sec)
            if check.periodic:
                if periods is None:
                    periods = self._periods.at(now)
                _roll(counts, periods)
                limit = _quota_exceeded(check, counts)
                if limit is not None:
                    return check.refused(limit)
            rpm = check.rpm
            if rpm is not None and requests is not None and requests.total >= rpm:
                return check.refused("rpm")
            tpm = check.tpm
            if tpm is not None and tokens is not None and tokens.total + estimate > tpm:
                return check.refused("tpm")
            cap = check.max_concurrency
            if cap is not None and counts.in_flight >= cap:
                return check.refused("max_concurrency")
            if check.shadow_checks:
                shadowed = True
            if tokens is not None:
                reserve = True
        hits = self._shadow_hits(checks, now, estimate) if shadowed else NO_HITS
        reserved = estimate if reserve else 0
        token_second = 0
        for check in checks:  # every window was advanced above: count at its newest second
            requests, tokens = check.requests, check.tokens
            if requests is not None:
                requests.put(1)
            if tokens is not None:
                token_second = tokens.head
                if reserved:
                    tokens.put(reserved)
            check.counts.in_flight += 1
        return reserved, token_second, hits

    def settle(
        self,
        checks: tuple[ScopeCheck, ...],
        admitted: Admitted,
        used_tokens: int,
        cost_micros: int | None,
        now: float,
    ) -> None:
        """MemoryLimiter.settle_now of an admission: free the slot, count tokens and cost."""
        reserved, token_second, _ = admitted
        used = used_tokens if used_tokens > 0 else 0
        cost = cost_micros if cost_micros is not None and cost_micros > 0 else 0
        sec = int(now)
        periods = self._periods.at(now)
        for check in checks:
            counts = check.counts
            if counts.in_flight > 0:
                counts.in_flight -= 1
            tokens = counts.tokens
            if tokens is not None:
                if check.tokens is not None:
                    tokens.take_back(token_second, reserved)
                if used:
                    tokens.add(sec, used)
            if counts.day is not periods.day:
                _roll(counts, periods)
            counts.day_tokens += used
            counts.day_micros += cost
            counts.month_tokens += used
            counts.month_micros += cost

    def _shadow_hits(self, checks: tuple[ScopeCheck, ...], now: float, estimate: int) -> ShadowHits:
        hits: list[tuple[str, str]] = []
        for check in checks:
            if not check.shadow_checks:
                continue
            counts = check.counts
            _roll(counts, self._periods.at(now))
            for limit, value in check.shadow_checks:
                if _exceeds(limit, value, counts, estimate):
                    hits.append((check.scope.id, limit))
        return tuple(hits)


def _roll(counts: ScopeCounts, periods: Periods) -> None:
    """Start the day's and the month's totals from zero when a new one has begun."""
    if counts.day != periods.day:
        counts.day, counts.day_tokens, counts.day_micros = periods.day, 0, 0
    if counts.month != periods.month:
        counts.month, counts.month_tokens, counts.month_micros = periods.month, 0, 0


def _quota_exceeded(check: ScopeCheck, counts: ScopeCounts) -> LimitName | None:
    """The first day or month limit spent, in REFUSAL_ORDER (the totals are rolled)."""
    if check.tokens_per_month is not None and counts.month_tokens >= check.tokens_per_month:
        return "tokens_per_month"
    if check.tokens_per_day is not None and counts.day_tokens >= check.tokens_per_day:
        return "tokens_per_day"
    if check.usd_per_month is not None and counts.month_micros >= check.usd_per_month:
        return "usd_per_month"
    if check.usd_per_day is not None and counts.day_micros >= check.usd_per_day:
        return "usd_per_day"
    return None


def _exceeds(limit: LimitName, value: int, counts: ScopeCounts, estimate: int) -> bool:
    """Would `limit` at `value` refuse the request now (gateway/limits/memory.py's test)?"""
    if limit == "rpm":
        return counts.requests is not None and counts.requests.total >= value
    if limit == "tpm":
        return counts.tokens is not None and counts.tokens.total + estimate > value
    if limit == "max_concurrency":
        return counts.in_flight >= value
    if limit == "tokens_per_day":
        return counts.day_tokens >= value
    if limit == "tokens_per_month":
        return counts.month_tokens >= value
    if limit == "usd_per_day":
        return counts.day_micros >= value
    return counts.month_micros >= value
