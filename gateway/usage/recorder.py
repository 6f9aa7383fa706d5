"""Stage ⑦: every finished request, recorded once, off the hot path.

`record` never blocks, never does IO and never raises into the request. It does O(1) work:
counter increments (Traffic), two histogram observations, an append to the event ring and
each viewer's backlog, an append to the request log's pending batch, and one access-log
access-log entry to a batch that goes to the log thread twice a second (gateway/logs.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.exchange import Exchange
from gateway.logs import access_batch_record
from gateway.metrics import GatewayMetrics
from gateway.usage.events import EventBus
from gateway.usage.request_log import RequestLog
from gateway.usage.traffic import Traffic, labels_of
from policies.reload import PolicyHolder

log = logging.getLogger("modelgate.usage")
access = logging.getLogger("modelgate.access")

MAX_EVENT_MODEL = 200
"""A model name is the client's string: the ring and every viewer keep at most this much."""
ACCESS_FLUSH_S = 0.5


class Recorder:
    def __init__(
        self,
        policy: PolicyHolder,
        events: EventBus,
        traffic: Traffic,
        metrics: GatewayMetrics,
        request_log: RequestLog,
    ) -> None:
        self.policy = policy
        self.events = events
        self.traffic = traffic
        self.metrics = metrics
        self.request_log = request_log
        self._access_batch: list[dict[str, Any]] = []

    def record(self, exchange: Exchange) -> None:
        try:
            event = exchange.as_event()
            model = event["model"]
            if model is not None and len(model) > MAX_EVENT_MODEL:  # client-chosen: bounded
                event["model"] = model[:MAX_EVENT_MODEL]
            labels = labels_of(exchange, self.policy.snapshot)
            self.traffic.count(labels, exchange)
            self.metrics.observe(labels, event["latency_ms"], exchange.ttfb_ms)
            self.events.publish(event)
            self.request_log.add(event)
            if access.isEnabledFor(logging.INFO):
                self._access_batch.append(event)
        except Exception:  # recording must never fail the request it records
            log.exception("recording a finished request failed")

    def flush_access_log(self) -> None:
        """Hand the finished requests' access lines to the log thread, all in one record."""
        if self._access_batch:
            batch, self._access_batch = self._access_batch, []
            access.handle(access_batch_record(access.name, batch))

    async def run_access_log(self) -> None:
        """Flush the access lines every ACCESS_FLUSH_S: one hand-off per flush, not per request."""
        try:
            while True:
                await asyncio.sleep(ACCESS_FLUSH_S)
                self.flush_access_log()
        finally:
            self.flush_access_log()
