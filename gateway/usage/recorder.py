"""Stage ⑦: every finished request, recorded once, off the hot path.

`record` never blocks, never does IO and never raises into the request. It does O(1) work:
counter increments (Traffic), two histogram observations, an append to the event ring and
each viewer's backlog, an append to the request log's pending batch, and one access-log
record handed to the logging queue (written by the log thread, see gateway/logs.py).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.exchange import Exchange
from gateway.metrics import GatewayMetrics
from gateway.usage.events import EventBus
from gateway.usage.request_log import RequestLog
from gateway.usage.traffic import Traffic, labels_of
from policies.reload import PolicyHolder

log = logging.getLogger("modelgate.usage")
access = logging.getLogger("modelgate.access")

MAX_LOGGED_TEXT = 200
MAX_EVENT_MODEL = 200
"""A model name is the client's string: the ring and every viewer keep at most this much."""


def _safe_text(value: str | None) -> str | None:
    """A client-chosen string fit for a log line: printable and short (no forged lines)."""
    if value is None or (value.isprintable() and len(value) <= MAX_LOGGED_TEXT):
        return value
    return repr(value[:MAX_LOGGED_TEXT])


def access_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The access line's fields: ids, names, numbers. Never prompts, keys or hashes."""
    return {
        "request_id": event["request_id"],
        "key_id": event["key_id"],
        "model": _safe_text(event["model"]),
        "provider": event["provider"],
        "target": _safe_text(event["target"]),
        "status": event["status"],
        "latency_ms": event["latency_ms"],
        "ttfb_ms": event["ttfb_ms"],
        "prompt_tokens": event["prompt_tokens"],
        "completion_tokens": event["completion_tokens"],
        "stream": event["stream"],
        "error": event["error"],
    }


def access_record(event: dict[str, Any]) -> logging.LogRecord:
    """The access line, built directly: `Logger.info` would also walk the stack to find
    its caller, several times the cost of everything else `record` does."""
    line = logging.LogRecord(access.name, logging.INFO, __file__, 0, "request finished", None, None)
    line.__dict__.update(access_fields(event))
    return line


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
                access.handle(access_record(event))
        except Exception:  # recording must never fail the request it records
            log.exception("recording a finished request failed")
