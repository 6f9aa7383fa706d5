"""The shared limiter: exact across workers and machines, one Redis round trip per admission.

Admission is one Lua script (EVALSHA) over every scope of the request (key, team, ancestors):
quotas, budgets, both windows and the in-flight set of each are read, checked and counted
atomically on the Redis server, so 20 simultaneous requests from any number of workers
against rpm 10 (a key's, or a team's shared by its keys) let exactly 10 through. Settlement
is one more script. Scopes have their own hash tags, so the scripts need one Redis server
(or a primary), not a Redis Cluster.

Redis holds the quota totals of record. Each worker also records its settled usage in the
local SQLite usage store (history; it survives Redis restarting empty): on start and when
Redis comes back, totals in Redis are raised to at least what the store holds (never
lowered, since other machines count too).

When Redis is unreachable the limiter is `degraded`: it logs once, stops calling Redis on
the request path, and probes it every second until it answers. Meanwhile `fail-open` (the
default) admits requests unchecked: an outage of the limiter should not become an outage of
the gateway, and rate limits protect upstreams, they do not bill (usage is still recorded
in SQLite). `fail-closed` refuses them with 503 (LimiterUnavailable) instead.

In-flight slots are leases (default 10 minutes): the slot of a worker that died mid-request
frees itself when its lease runs out; one settled while Redis did not answer is freed as
soon as it answers again. Time is the worker's clock (NTP-synced machines
assumed): skew between workers only moves the moment a second's bucket expires, counts
stay exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.errors import RateLimited
from gateway.limits.base import Admission, Clock, LimiterUnavailable
from gateway.limits.periods import PeriodCache
from gateway.limits.redis_keys import (
    WINDOW_TTL_S,
    day_ttl,
    describe_failure,
    key_names,
    lua,
    month_ttl,
)
from gateway.limits.redis_replies import (
    REPLY_PER_SCOPE,
    limit_args,
    refusal,
    reply_headers,
    shadow_counts,
    shadow_hits,
    window_total,
)
from gateway.limits.report import UseCounts, usage_report
from gateway.payloads import FailMode, LimiterStatus, LimitsUse
from gateway.usage.store import UsageStore
from policies.models import Limits
from policies.scopes import Scope

log = logging.getLogger("modelgate.limits")

T = TypeVar("T")
_FAILURES = (RedisError, OSError)
MAX_UNRELEASED = 100_000
"""Tickets remembered across an outage; any beyond are freed by their leases running out."""


class RedisLimiter:
    """Limits of every key, counted in Redis and shared by every worker that uses it."""

    def __init__(
        self,
        redis_url: str,
        store: UsageStore | None,
        *,
        fail_mode: FailMode = "fail-open",
        clock: Clock = time.time,
        probe_interval_s: float = 1.0,
        lease_s: float = 600.0,
        timeout_s: float = 1.0,
    ) -> None:
        # No retries: a script whose reply was lost may have run; running it again would
        # count the request twice. A broken pooled connection is replaced on next use.
        self._redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._store = store
        self._fail_mode: FailMode = fail_mode
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._lease_ms = int(lease_s * 1000)
        self._admit_script = self._redis.register_script(lua("redis_admit.lua"))
        self._settle_script = self._redis.register_script(lua("redis_settle.lua"))
        self._seed_script = self._redis.register_script(lua("redis_seed.lua"))
        self._periods = PeriodCache()
        self._ticket_prefix = secrets.token_hex(6) + ":"
        self._tickets = itertools.count(1)
        self._seen: dict[str, UseCounts] = {}
        self._unlimited: dict[tuple[str, str, str], list[int]] = {}
        """Usage (tokens, requests, micro-dollars) of requests no scope limits, sent to Redis
        once a second (nothing to check)."""
        self._unreleased: dict[str, list[str]] = {}
        self._unreleased_count = 0
        """In-flight tickets settled while Redis did not answer: leases key -> tickets."""
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def degraded(self) -> bool:
        return self._error is not None

    async def start(self) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.open)
        try:
            await self._redis.ping()
            await self._seed_from_store()
        except _FAILURES as exc:
            self._lost(exc)
        self._task = asyncio.create_task(self._maintain(), name="modelgate-limits-redis")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._background:  # settlements of cancelled requests
            await asyncio.gather(*self._background, return_exceptions=True)
        if not self.degraded:
            with contextlib.suppress(*_FAILURES):
                await self._send_unlimited()
        await self._redis.aclose()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)

    async def admit(self, scopes: Sequence[Scope], estimated_tokens: int) -> Admission:
        everyone = tuple(scopes)
        checked = [scope for scope in everyone if scope.checked]
        if not checked:
            return Admission(everyone, 0)
        if self.degraded:
            return self._unchecked(everyone)
        now = self._clock()
        periods = self._periods.at(now)
        ticket = f"{self._ticket_prefix}{next(self._tickets)}"
        reserve = any(scope.counts_tokens for scope in checked)
        estimate = max(0, estimated_tokens) if reserve else 0
        keys: list[str] = []
        args = [
            f"{int(now * 1000)} {estimate} {self._lease_ms} {WINDOW_TTL_S} "
            f"{day_ttl(periods, now)} {month_ttl(periods, now)}"
        ]
        for scope in checked:
            names = key_names(scope.id, periods.day, periods.month)
            keys += (names.requests, names.tokens, names.leases, names.day, names.month)
            args.append(limit_args(scope))
        call = self._in_background(self._admit_script(keys=keys, args=[" ".join(args), ticket]))
        try:
            reply = await asyncio.shield(call)
        except asyncio.CancelledError:
            # The caller went away mid-call (client disconnected). If the script admitted
            # the request, free its slots now rather than when the leases run out.
            orphan = Admission(everyone, estimate, {}, True, int(now), ticket, True)
            call.add_done_callback(lambda done: self._settle_orphan(done, orphan))
            raise
        except _FAILURES as exc:
            self._lost(exc)
            return self._unchecked(everyone)
        values = [int(value) for value in reply.split()]
        verdict, refusing, freed_by = values[0], values[1], values[2]
        headers: dict[str, str] = {}
        refused: RateLimited | None = None
        fewest_requests = fewest_tokens = -1
        hits: tuple[tuple[str, str], ...] = ()
        for index, scope in enumerate(checked):
            (
                requests,
                tokens,
                in_flight,
                day,
                month,
                day_usd,
                month_usd,
                req_oldest,
                tok_oldest,
                shadow,
            ) = values[3 + REPLY_PER_SCOPE * index : 3 + REPLY_PER_SCOPE * (index + 1)]
            seen = self._seen.setdefault(scope.id, UseCounts())
            seen.rpm_used, seen.tpm_used, seen.in_flight = requests, tokens, in_flight
            seen.day_tokens, seen.month_tokens = day, month
            seen.day_micros, seen.month_micros = day_usd, month_usd
            rpm, tpm = scope.limits.rpm, scope.limits.tpm
            if verdict:
                if index + 1 == refusing:
                    headers = reply_headers(rpm, requests, req_oldest, tpm, tokens, tok_oldest, now)
                    wait = float("inf") if freed_by < 0 else freed_by - now
                    totals = (day, month, day_usd, month_usd)
                    refused = refusal(verdict, scope, estimate, totals, wait, periods, headers, now)
                continue
            if shadow:
                hits += shadow_hits(scope.id, shadow)
            # The tightest scope speaks for each window (fewest requests or tokens left).
            if rpm is not None and (fewest_requests < 0 or rpm - requests < fewest_requests):
                fewest_requests = max(0, rpm - requests)
                headers.update(reply_headers(rpm, requests, req_oldest, None, 0, -1, now))
            if tpm is not None and (fewest_tokens < 0 or tpm - tokens < fewest_tokens):
                fewest_tokens = max(0, tpm - tokens)
                headers.update(reply_headers(None, 0, -1, tpm, tokens, tok_oldest, now))
        if refused is not None:
            raise refused
        return Admission(everyone, estimate, headers, True, int(now), ticket, True, shadow=hits)

    def settled_at_once(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> bool:
        return False  # a round trip to Redis: `settle`

    async def settle(
        self, admission: Admission, used_tokens: int, cost_micros: int | None = 0
    ) -> None:
        """See Limiter.settle: an unknown cost (None) adds no spend."""
        if admission.settled:
            return
        admission.settled = True
        used = max(0, used_tokens)
        cost = max(0, cost_micros) if cost_micros is not None else 0
        now = self._clock()
        periods = self._periods.at(now)
        if self._store is not None:
            for scope in admission.scopes:
                self._store.record(scope.id, periods.day, periods.month, used, 1, cost)
        if self.degraded:
            self._release_later(admission)
            return  # the store has it; Redis totals are raised from the store on recovery
        if not admission.checked:
            for scope in admission.scopes:
                slot = (scope.id, periods.day, periods.month)
                pending = self._unlimited.setdefault(slot, [0, 0, 0])
                pending[0] += used
                pending[1] += 1
                pending[2] += cost
            return
        keys: list[str] = []
        args = [
            f"{admission.reserved_tokens} {admission.token_second} {used} {cost} {int(now)} "
            f"{WINDOW_TTL_S} {day_ttl(periods, now)} {month_ttl(periods, now)}"
        ]
        for scope in admission.scopes:
            names = key_names(scope.id, periods.day, periods.month)
            keys += (names.tokens, names.leases, names.day, names.month)
            holds = "0" if not scope.checked else "1" if scope.counts_tokens else "2"
            args.append(holds)
        try:  # shielded: settlement runs in `finally` blocks of cancelled requests too
            totals = await asyncio.shield(
                self._in_background(
                    self._settle_script(keys=keys, args=[" ".join(args), admission.ticket])
                )
            )
        except _FAILURES as exc:
            self._lost(exc)
            self._release_later(admission)
            return
        values = [int(value) for value in totals.split()]
        for index, scope in enumerate(admission.scopes):
            seen = self._seen.setdefault(scope.id, UseCounts())
            (
                seen.day_tokens,
                seen.day_requests,
                seen.month_tokens,
                seen.month_requests,
                seen.day_micros,
                seen.month_micros,
            ) = values[6 * index : 6 * index + 6]
            if scope.checked:
                seen.in_flight = max(0, seen.in_flight - 1)
                if scope.counts_tokens:
                    seen.tpm_used = max(0, seen.tpm_used + used - admission.reserved_tokens)

    def usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        """What this worker last saw of the scope (no IO); `fetch_usage` reads Redis."""
        periods = self._periods.at(self._clock())
        seen = self._seen.get(scope_id) or UseCounts()
        return usage_report(scope_id, limits, periods, seen)

    async def fetch_usage(self, scope_id: str, limits: Limits) -> LimitsUse:
        if self.degraded:
            return self.usage(scope_id, limits)
        now = self._clock()
        periods = self._periods.at(now)
        names = key_names(scope_id, periods.day, periods.month)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(names.requests)
                pipe.hgetall(names.tokens)
                pipe.zcount(names.leases, f"({int(now * 1000)}", "+inf")
                pipe.hgetall(names.day)
                pipe.hgetall(names.month)
                requests, tokens, in_flight, day, month = await pipe.execute()
        except _FAILURES as exc:
            self._lost(exc)
            return self.usage(scope_id, limits)
        counts = UseCounts(
            rpm_used=window_total(requests, int(now)),
            tpm_used=window_total(tokens, int(now)),
            in_flight=int(in_flight),
            day_tokens=int(day.get(b"tokens", 0)),
            day_requests=int(day.get(b"requests", 0)),
            month_tokens=int(month.get(b"tokens", 0)),
            month_requests=int(month.get(b"requests", 0)),
            day_micros=int(day.get(b"usd", 0)),
            month_micros=int(month.get(b"usd", 0)),
            day_shadow=shadow_counts(day),
            month_shadow=shadow_counts(month),
        )
        return usage_report(scope_id, limits, periods, counts)

    def status(self) -> LimiterStatus:
        error = self._error
        if error is None and self._store is not None and self._store.error is not None:
            error = self._store.error
        return {
            "store": "redis",
            "state": "ok" if error is None else "degraded",
            "mode": self._fail_mode,
            "error": error,
        }

    def _in_background(self, call: Awaitable[T]) -> asyncio.Future[T]:
        """Run `call` to its end even if its caller is cancelled; `close` waits for it."""
        future = asyncio.ensure_future(call)
        self._background.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: asyncio.Future[Any]) -> None:
        self._background.discard(future)
        if not future.cancelled():
            future.exception()  # marked as seen: a caller still waiting gets it anyway

    def _settle_orphan(self, done: asyncio.Future[Any], orphan: Admission) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        if int(done.result().split()[0]) == 0:  # it was admitted
            self._in_background(self.settle(orphan, 0))

    def _unchecked(self, scopes: tuple[Scope, ...]) -> Admission:
        if self._fail_mode == "fail-closed":
            raise LimiterUnavailable()
        return Admission(scopes, 0, degraded=True)

    def _lost(self, exc: BaseException) -> None:
        if self._error is None:
            log.warning(
                "limits: Redis unreachable (%s); %s until it answers again",
                describe_failure(exc),
                "admitting requests unchecked"
                if self._fail_mode == "fail-open"
                else "refusing requests with 503",
            )
        self._error = describe_failure(exc)
        self._unlimited.clear()  # already in the usage store; raised from there on recovery

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval_s)
            try:
                if self.degraded:
                    await self._redis.ping()
                    await self._seed_from_store()
                    await self._release_leftovers()
                    self._error = None
                    log.info("limits: Redis reachable again; limits are enforced")
                else:
                    await self._send_unlimited()
            except _FAILURES as exc:
                self._lost(exc)
            except Exception:  # a bug must not stop the probing; say so and keep going
                log.exception("limits: background task failed")

    def _release_later(self, admission: Admission) -> None:
        """Free the slot when Redis answers again, not when its lease runs out (minutes)."""
        if not admission.ticket:
            return
        for scope in admission.scopes:
            if scope.checked and self._unreleased_count < MAX_UNRELEASED:
                leases = key_names(scope.id, "", "").leases
                self._unreleased.setdefault(leases, []).append(admission.ticket)
                self._unreleased_count += 1

    async def _release_leftovers(self) -> None:
        if not self._unreleased:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for leases, tickets in self._unreleased.items():
                pipe.zrem(leases, *tickets)
            await pipe.execute()
        self._unreleased.clear()
        self._unreleased_count = 0

    async def _send_unlimited(self) -> None:
        if not self._unlimited:
            return
        batch, self._unlimited = self._unlimited, {}
        now = self._clock()
        periods = self._periods.at(now)
        async with self._redis.pipeline(transaction=False) as pipe:
            for (scope_id, day, month), (tokens, requests, cost) in batch.items():
                names = key_names(scope_id, day, month)
                for key, ttl in (
                    (names.day, day_ttl(periods, now)),
                    (names.month, month_ttl(periods, now)),
                ):
                    pipe.hincrby(key, "tokens", tokens)
                    pipe.hincrby(key, "requests", requests)
                    if cost:
                        pipe.hincrby(key, "usd", cost)
                    pipe.expire(key, ttl)
            await pipe.execute()

    async def _seed_from_store(self) -> None:
        if self._store is None:
            return
        now = self._clock()
        periods = self._periods.at(now)
        try:
            await asyncio.to_thread(self._store.flush)
            totals = await asyncio.to_thread(self._store.load_totals, periods.day, periods.month)
        except sqlite3.Error as exc:  # Redis is still usable; its own totals stand
            log.error("limits: reading the usage store to seed Redis failed: %s", exc)
            return
        if not totals:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for scope_id, total in totals.items():
                names = key_names(scope_id, periods.day, periods.month)
                day = [
                    total.day_tokens,
                    total.day_requests,
                    total.day_cost_micros,
                    day_ttl(periods, now),
                ]
                month = [
                    total.month_tokens,
                    total.month_requests,
                    total.month_cost_micros,
                    month_ttl(periods, now),
                ]
                await self._seed_script(keys=[names.day], args=day, client=pipe)
                await self._seed_script(keys=[names.month], args=month, client=pipe)
            await pipe.execute()
