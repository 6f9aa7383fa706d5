"""Budget and quota alerts (alerts.yaml), checked when a request has been settled.

`on_finished` is the recorder's hook (gateway/usage/recorder.py, called once per finished
request after its settlement): it reads each scope's use from the limiter's local view (no
IO; with Redis, the totals the settlement script returned), and for each threshold this
process sees reached for the first time starts a background task that claims it in the
ledger (gateway/alerts/fired.py) and, if it wins, publishes a `budget_alert` event, counts
`modelgate_budget_alerts_total`, logs a line and posts the webhook.

With several workers, `share` hands each fired alert to the others (EventFanout.send_alert),
and `record_remote` streams and counts theirs here, so /admin/api/events and /metrics on any
worker show every alert; only the worker that fired one logs it and posts its webhook.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from credentials.pool import CredentialResolver
from gateway.alerts.fired import KEEP_AFTER_PERIOD_S, FiredLedger, create_ledger
from gateway.alerts.reached import Reached, reached
from gateway.alerts.webhook import WebhookSender
from gateway.limits import Limiter
from gateway.payloads import BudgetAlert
from gateway.request.exchange import Exchange
from gateway.usage.events import EventBus
from policies.reload import PolicyHolder
from policies.scopes import Scope
from policies.snapshot import Snapshot

log = logging.getLogger("modelgate.alerts")

EVENT_KIND = b"budget_alert"
MAX_SEEN = 100_000
"""Thresholds remembered as seen by this process; past it the memory starts afresh (the
ledger still fires each once)."""


class BudgetAlerts:
    def __init__(
        self,
        policy: PolicyHolder,
        limiter: Limiter,
        events: EventBus,
        registry: CollectorRegistry,
        ledger: FiredLedger,
        webhooks: WebhookSender,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy, self._limiter, self._events = policy, limiter, events
        self._ledger, self._webhooks, self._clock = ledger, webhooks, clock
        self._fired = Counter(
            "modelgate_budget_alerts",
            "Budget and quota alerts fired (alerts.yaml), by scope, limit and threshold (%).",
            ["scope", "limit", "threshold"],
            registry=registry,
        )
        self._seen: set[str] = set()
        self._index: tuple[Snapshot | None, dict[str, tuple[Scope, ...]]] = (None, {})
        self._tasks: set[asyncio.Task[None]] = set()
        self.share: Callable[[BudgetAlert], None] | None = None
        """Hands this worker's alerts to the other workers (EventFanout.send_alert), if any."""

    @classmethod
    def create(
        cls,
        policy: PolicyHolder,
        limiter: Limiter,
        events: EventBus,
        registry: CollectorRegistry,
        *,
        redis_url: str | None,
        state_dir: Path,
        credentials_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> BudgetAlerts:
        resolver = CredentialResolver(credentials_dir)
        webhooks = WebhookSender(lambda ref: resolver.resolve(ref, time.monotonic()))
        ledger = create_ledger(redis_url, state_dir)
        return cls(policy, limiter, events, registry, ledger, webhooks, clock)

    def on_finished(self, exchange: Exchange) -> None:
        """The recorder hook: arithmetic on local counts only; never raises, never waits."""
        snapshot = self._policy.snapshot
        if snapshot is None or not snapshot.policy.alerts.alerts or exchange.key_id is None:
            return
        try:
            fresh = [
                found
                for scope in self._scopes(snapshot, exchange.key_id)
                if scope.checked
                for found in self._reached_first_here(snapshot, scope)
            ]
        except Exception:  # an alert must never fail the request that triggered it
            log.exception("checking budget alerts failed")
            return
        if fresh:  # one task, in order: 50% is told before 80%
            task = asyncio.get_running_loop().create_task(self._fire_all(fresh))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reached_first_here(self, snapshot: Snapshot, scope: Scope) -> list[Reached]:
        """Thresholds of `scope` reached now that this process has not seen before."""
        use = self._limiter.usage(scope.id, scope.limits)
        fresh = []
        for found in reached(snapshot.policy.alerts, scope, use):
            if found.key not in self._seen:
                if len(self._seen) >= MAX_SEEN:
                    self._seen.clear()
                self._seen.add(found.key)
                fresh.append(found)
        return fresh

    def _scopes(self, snapshot: Snapshot, key_id: str) -> tuple[Scope, ...]:
        """The key's scopes in this snapshot (indexed once per applied commit)."""
        indexed, by_key = self._index
        if indexed is not snapshot:
            by_key = {p.key_id: p.scopes for p in snapshot.principals_by_hash.values()}
            self._index = (snapshot, by_key)
        return by_key.get(key_id, ())

    async def _fire_all(self, fresh: list[Reached]) -> None:
        for found in fresh:
            await self._fire(found)

    async def _fire(self, found: Reached) -> None:
        try:
            ends = dt.datetime.fromisoformat(found.resets_at).timestamp()
            ttl = max(0.0, ends - self._clock()) + KEEP_AFTER_PERIOD_S
            won = await self._ledger.claim(found.key, ttl)
        except Exception as exc:  # better twice (once per worker at most) than never
            log.warning("budget alerts: the fired-alerts ledger failed (%s); alerting anyway", exc)
            won = True
        if not won:
            return
        event = found.as_event(self._clock())
        self._events.publish(event, EVENT_KIND)
        self._fired.labels(found.scope.id, found.limit, str(found.threshold)).inc()
        if self.share is not None:
            self.share(event)
        log.warning("budget alert: %s", event["text"])
        if found.rule.webhook is not None:
            self._webhooks.send(found.rule.webhook, event["text"])

    def record_remote(self, alerts: list[BudgetAlert]) -> None:
        """Alerts another worker fired: streamed and counted, not logged or posted again."""
        for alert in alerts:
            try:
                self._events.publish(alert, EVENT_KIND)
                self._fired.labels(alert["scope"], alert["limit"], str(alert["threshold"])).inc()
            except Exception:  # one odd alert must not cost the rest of the batch
                log.exception("recording another worker's budget alert failed")

    async def drain(self) -> None:
        """Wait until every alert under way has fired and its webhook was delivered or
        given up (tests; shutdown waits only briefly, see close)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
        await self._webhooks.drain()

    async def close(self) -> None:
        """Wait for claims under way (briefly), stop webhook deliveries, close the ledger."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        await self._webhooks.close()
        await self._ledger.close()
