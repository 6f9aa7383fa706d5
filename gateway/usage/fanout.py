"""What a gateway's worker processes share through Redis pub/sub: finished requests,
credential cooldowns and budget alerts.

With `--workers N` the kernel hands each connection to any worker, so `/metrics`, the event
stream and usage totals would each show one worker's share, and each worker would learn of
an upstream's 429 by getting one itself, and a budget alert (gateway/alerts) would reach
only the event stream of the worker that fired it. Instead every worker publishes to its gateway's
channel in batches (every FLUSH_S, one PUBLISH) and applies the other workers' batches as if
it had served those requests, met those 429s and fired those alerts, within about FLUSH_S.

Never on the request path: `send` appends to a bounded list. If Redis goes away, batches
are dropped and counted (the local view stays whole), the loss and the recovery are logged
once each, and the subscription is retried every RETRY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import cast

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway.payloads import BudgetAlert, Cooldown, FanoutBatch, RequestEvent

log = logging.getLogger("modelgate.fanout")

CHANNEL = "modelgate:events"
FLUSH_S = 0.1
RETRY_S = 1.0
MAX_PENDING = 10_000
"""Events kept for the next batch; beyond it they are dropped (Redis is far behind)."""


class EventFanout:
    def __init__(
        self,
        redis_url: str,
        apply: Callable[[list[RequestEvent]], None],
        channel: str = CHANNEL,
        apply_cooldowns: Callable[[list[Cooldown]], None] | None = None,
        apply_alerts: Callable[[list[BudgetAlert]], None] | None = None,
    ) -> None:
        # The health check pings a quiet subscription, so a connection that died without
        # a word is noticed and replaced instead of waiting for messages forever.
        self._redis = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=1.0, health_check_interval=30
        )
        self._apply = apply
        self._apply_cooldowns = apply_cooldowns
        self._apply_alerts = apply_alerts
        self._channel = channel
        self._origin = secrets.token_hex(8)
        """This worker's id in the batches, so it skips its own."""
        self._pending: list[RequestEvent] = []
        self._cooldowns: list[Cooldown] = []
        self._alerts: list[BudgetAlert] = []
        self.dropped = 0
        self._failing = False
        self._pubsub: PubSub | None = None

    async def subscribe(self) -> None:
        """Subscribe now, before the worker serves: events published earlier are not kept
        by Redis. If Redis is down, `run` keeps trying."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        else:
            self._pubsub = pubsub

    def send(self, event: RequestEvent) -> None:
        """Queue a finished request of this worker for the others."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append(event)

    def send_cooldown(self, provider: str, ref: str, seconds: float, reason: str) -> None:
        """Tell the other workers to sit a credential out (CredentialPools.on_cool_down)."""
        if len(self._cooldowns) < MAX_PENDING:
            until = time.time() + seconds
            self._cooldowns.append(Cooldown(provider=provider, ref=ref, until=until, reason=reason))

    def send_alert(self, alert: BudgetAlert) -> None:
        """Queue a budget alert this worker fired, for the others' event streams
        (BudgetAlerts.share)."""
        if len(self._alerts) < MAX_PENDING:
            self._alerts.append(alert)

    async def run(self) -> None:
        """Publish and subscribe until cancelled (a task for the worker's lifetime)."""
        try:
            await asyncio.gather(self._publish_forever(), self._subscribe_forever())
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if not self._pending and not self._cooldowns and not self._alerts:
                continue
            batch, self._pending = self._pending, []
            cooldowns, self._cooldowns = self._cooldowns, []
            shared = FanoutBatch(origin=self._origin, events=batch, cooldowns=cooldowns)
            if self._alerts:  # rare: the field is left out of the usual batch
                shared["alerts"], self._alerts = self._alerts, []
            message = orjson.dumps(shared)
            try:
                await self._redis.publish(self._channel, message)
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                self._failed(exc)
            else:
                self._recovered()

    async def _subscribe_forever(self) -> None:
        while True:
            try:
                pubsub, self._pubsub = self._pubsub, None
                if pubsub is None:
                    pubsub = self._redis.pubsub()
                    await pubsub.subscribe(self._channel)
                async with pubsub:
                    self._recovered()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._received(message["data"])
            except (RedisError, OSError) as exc:
                self._failed(exc)
            await asyncio.sleep(RETRY_S)

    def _received(self, data: bytes) -> None:
        try:
            # Sent by a worker of the same gateway (the same code): trusted to match.
            batch = cast(FanoutBatch, orjson.loads(data))
            if batch.get("origin") != self._origin:
                self._apply(batch["events"])
                cooldowns = batch.get("cooldowns")
                if cooldowns and self._apply_cooldowns is not None:
                    self._apply_cooldowns(cooldowns)
                alerts = batch.get("alerts")
                if alerts and self._apply_alerts is not None:
                    self._apply_alerts(alerts)
        except Exception:  # a malformed batch must not end the subscription
            log.exception("an event batch from another worker could not be applied")

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "sharing events with the other workers failed; each shows its own until "
                "Redis is back",
                extra={"error": type(exc).__name__},
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("sharing events with the other workers works again")
