"""The in-process limiter: exact within one event loop, quotas persisted to SQLite.

Exactness: `admit` never awaits between reading the counters and counting the request, so
on one event loop no two admissions interleave; 20 simultaneous requests against rpm 10
let exactly 10 through. Memory per key is constant: two 60-bucket windows and a few ints.
Day and month totals are loaded from the usage store on start (a restart resumes where it
was) and every settlement is recorded there (batched, off the request path).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from gateway.limits import refusals
from gateway.limits.base import Admission, Clock
from gateway.limits.periods import PeriodCache, Periods
from gateway.limits.report import UseCounts, usage_report
from gateway.limits.window import SlidingWindow
from gateway.payloads import FailMode, LimiterStatus, LimitsUse
from gateway.usage.store import UsageStore
from policies.models import Limits


@dataclass(slots=True)
class _KeyUse:
    """Everything counted for one key id (kept across policy reloads)."""

    requests: SlidingWindow | None = None
    tokens: SlidingWindow | None = None
    in_flight: int = 0
    day: str = ""
    day_tokens: int = 0
    day_requests: int = 0
    month: str = ""
    month_tokens: int = 0
    month_requests: int = 0

    def roll(self, periods: Periods) -> None:
        """Start from zero when a new UTC day or month has begun."""
        if self.day != periods.day:
            self.day, self.day_tokens, self.day_requests = periods.day, 0, 0
        if self.month != periods.month:
            self.month, self.month_tokens, self.month_requests = periods.month, 0, 0


class MemoryLimiter:
    """Limits of every key, counted in this process."""

    def __init__(
        self,
        store: UsageStore | None,
        *,
        fail_mode: FailMode = "fail-open",
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._fail_mode: FailMode = fail_mode
        self._clock = clock
        self._periods = PeriodCache()
        self._keys: dict[str, _KeyUse] = {}

    async def start(self) -> None:
        if self._store is None:
            return
        await asyncio.to_thread(self._store.open)
        periods = self._periods.at(self._clock())
        totals = await asyncio.to_thread(self._store.load_totals, periods.day, periods.month)
        for key_id, total in totals.items():
            self._keys[key_id] = _KeyUse(
                day=periods.day,
                day_tokens=total.day_tokens,
                day_requests=total.day_requests,
                month=periods.month,
                month_tokens=total.month_tokens,
                month_requests=total.month_requests,
            )

    async def close(self) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.close)

    async def admit(self, key_id: str, limits: Limits, estimated_tokens: int) -> Admission:
        return self.admit_now(key_id, limits, estimated_tokens)

    async def settle(self, admission: Admission, used_tokens: int) -> None:
        self.settle_now(admission, used_tokens)

    def admit_now(self, key_id: str, limits: Limits, estimated_tokens: int) -> Admission:
        """`admit` without the coroutine: checks and counts with no await in between."""
        rpm, tpm, max_conc = limits.rpm, limits.tpm, limits.max_concurrency
        per_day, per_month = limits.tokens_per_day, limits.tokens_per_month
        if (
            rpm is None
            and tpm is None
            and max_conc is None
            and per_day is None
            and per_month is None
        ):
            return Admission(key_id, 0)  # no limits: nothing to count until settlement
        now = self._clock()
        sec = int(now)
        use = self._keys.get(key_id)
        if use is None:
            use = self._keys[key_id] = _KeyUse()
        requests = tokens = None
        if rpm is not None:
            requests = use.requests
            if requests is None:
                requests = use.requests = SlidingWindow()
            requests.advance(sec)
        estimate = 0
        if tpm is not None:
            tokens = use.tokens
            if tokens is None:
                tokens = use.tokens = SlidingWindow()
            tokens.advance(sec)
            estimate = max(0, estimated_tokens)

        if per_day is not None or per_month is not None:
            periods = self._periods.at(now)
            use.roll(periods)
            if per_month is not None and use.month_tokens >= per_month:
                raise refusals.quota_exhausted(
                    key_id,
                    "month",
                    use.month_tokens,
                    per_month,
                    periods.month_ends_at - now,
                    _headers(rpm, requests, tpm, tokens, now),
                )
            if per_day is not None and use.day_tokens >= per_day:
                raise refusals.quota_exhausted(
                    key_id,
                    "day",
                    use.day_tokens,
                    per_day,
                    periods.day_ends_at - now,
                    _headers(rpm, requests, tpm, tokens, now),
                )
        if requests is not None and rpm is not None and requests.total >= rpm:
            headers = _headers(rpm, requests, tpm, tokens, now)
            wait = requests.seconds_until_freed(now, requests.total + 1 - rpm)
            raise refusals.rpm_exceeded(key_id, rpm, wait, headers)
        if tokens is not None and tpm is not None and tokens.total + estimate > tpm:
            headers = _headers(rpm, requests, tpm, tokens, now)
            wait = tokens.seconds_until_freed(now, tokens.total + estimate - tpm)
            raise refusals.tpm_exceeded(key_id, tpm, estimate, wait, headers)
        if max_conc is not None and use.in_flight >= max_conc:
            headers = _headers(rpm, requests, tpm, tokens, now)
            raise refusals.concurrency_exceeded(key_id, max_conc, rpm is not None, headers)

        if requests is not None:
            requests.add(sec, 1)
        token_second = tokens.add(sec, estimate) if tokens is not None else 0
        use.in_flight += 1
        headers = _headers(rpm, requests, tpm, tokens, now)
        return Admission(key_id, estimate, headers, limits, token_second, "", True)

    def settle_now(self, admission: Admission, used_tokens: int) -> None:
        if admission.settled:
            return
        admission.settled = True
        used = max(0, used_tokens)
        now = self._clock()
        periods = self._periods.at(now)
        use = self._keys.get(admission.key_id)
        if use is None:
            use = self._keys[admission.key_id] = _KeyUse()
        if admission.holds_slot and use.in_flight > 0:
            use.in_flight -= 1
        tokens = use.tokens
        if tokens is not None:  # the reservation becomes the real figure, counted now
            tokens.take_back(admission.token_second, admission.reserved_tokens)
            if used:
                tokens.add(int(now), used)
        use.roll(periods)
        use.day_tokens += used
        use.day_requests += 1
        use.month_tokens += used
        use.month_requests += 1
        if self._store is not None:
            self._store.record(admission.key_id, periods.day, periods.month, used)

    def usage(self, key_id: str, limits: Limits) -> LimitsUse:
        now = self._clock()
        periods = self._periods.at(now)
        counts = UseCounts()
        use = self._keys.get(key_id)
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
        return usage_report(key_id, limits, periods, counts)

    async def fetch_usage(self, key_id: str, limits: Limits) -> LimitsUse:
        return self.usage(key_id, limits)

    def status(self) -> LimiterStatus:
        error = self._store.error if self._store is not None else None
        return {
            "store": "memory",
            "state": "ok" if error is None else "degraded",
            "mode": self._fail_mode,
            "error": error,
        }

    def tracked_keys(self) -> int:
        """How many key ids hold state (memory grows with keys, never with requests)."""
        return len(self._keys)


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
