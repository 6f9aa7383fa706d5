"""Stage ⑦: every finished request, recorded once, off the hot path.

`record` never blocks, never does IO and never raises into the request. It does O(1) work:
counter increments (Traffic), two histogram observations, an append to the event ring and
each viewer's backlog, an append to the request log's pending batch, and one access-log
entry to a batch formatted on the loop twice a second, a slice per turn (gateway/logs.py).
With several workers, the other workers' requests (gateway/usage/fanout.py) are counted,
observed and streamed here too; only the worker that served a request logs and stores it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.logs import access_batch_record, access_text, formatted_record
from gateway.metrics import GatewayMetrics
from gateway.payloads import RequestEvent
from gateway.request.exchange import Exchange
from gateway.usage.events import EventBus
from gateway.usage.request_log import RequestLog
from gateway.usage.traffic import Labels, Traffic, labels_of
from policies.reload import PolicyHolder

log = logging.getLogger("modelgate.usage")
access = logging.getLogger("modelgate.access")

MAX_EVENT_MODEL = 200
"""A model name is the client's string: the ring and every viewer keep at most this much."""
ACCESS_FLUSH_S = 0.5
ACCESS_SLICE = 50
"""Access lines formatted per turn of the event loop (about 0.25 ms of it)."""


class Recorder:
    def __init__(
        self,
        policy: PolicyHolder,
        events: EventBus,
        traffic: Traffic,
        metrics: GatewayMetrics,
        request_log: RequestLog,
        share: Callable[[RequestEvent], None] | None = None,
    ) -> None:
        self.policy = policy
        self.events = events
        self.traffic = traffic
        self.metrics = metrics
        self.request_log = request_log
        self.share = share
        """Hands this worker's events to the other workers (EventFanout.send), if any."""
        self._access_batch: list[RequestEvent] = []
        self.on_finished: Callable[[Exchange], None] | None = None
        """Told of each request this worker served, after its settlement (budget alerts)."""

    def record(self, exchange: Exchange) -> None:
        try:
            event = exchange.as_event()
            labels = labels_of(event, self.policy.snapshot)  # the whole model name resolves
            model = event["model"]
            if model is not None and len(model) > MAX_EVENT_MODEL:  # client-chosen: bounded
                event["model"] = model[:MAX_EVENT_MODEL]
            self._count(labels, event)
            self.request_log.add(event)
            if access.isEnabledFor(logging.INFO):
                self._access_batch.append(event)
            if self.share is not None:
                self.share(event)
            if self.on_finished is not None:
                self.on_finished(exchange)
        except Exception:  # recording must never fail the request it records
            log.exception("recording a finished request failed")

    def record_remote(self, events: list[RequestEvent]) -> None:
        """Requests another worker served: counted, observed and streamed, not stored."""
        snapshot = self.policy.snapshot
        for event in events:
            try:
                self._count(labels_of(event, snapshot), event)
            except Exception:
                log.exception("recording another worker's request failed")

    def _count(self, labels: Labels, event: RequestEvent) -> None:
        self.traffic.count(labels, event)
        self.metrics.observe(labels, event["latency_ms"], event["ttfb_ms"])
        self.metrics.shadow_refusals(event)
        self.events.publish(event)

    def flush_access_log(self) -> None:
        """Hand the finished requests' access lines to the log thread, all in one record."""
        if self._access_batch:
            batch, self._access_batch = self._access_batch, []
            access.handle(access_batch_record(access.name, batch))

    async def run_access_log(self) -> None:
        """Every ACCESS_FLUSH_S, format the finished requests' access lines on the loop, a
        slice per turn, and hand them to the log thread in one record: it only writes."""
        texts: list[str] = []
        try:
            while True:
                await asyncio.sleep(ACCESS_FLUSH_S)
                while self._access_batch:
                    batch = self._access_batch[:ACCESS_SLICE]
                    del self._access_batch[:ACCESS_SLICE]
                    texts.append(access_text(access.name, batch))
                    await asyncio.sleep(0)
                if texts:
                    access.handle(formatted_record(access.name, "\n".join(texts)))
                    texts = []
        finally:
            if texts:  # cancelled between slices: what was formatted goes out first
                access.handle(formatted_record(access.name, "\n".join(texts)))
            self.flush_access_log()
