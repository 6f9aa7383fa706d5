"""Where a would-be refusal shows: the event, the request-log row, the metric (in process)."""

from __future__ import annotations

import json

from gateway.errors import Protocol
from gateway.limits.memory import MemoryLimiter
from gateway.metrics import GatewayMetrics
from gateway.request.exchange import Exchange
from gateway.request.settlement import Settlement
from gateway.usage.request_log import row_of
from gateway.usage.traffic import Traffic
from policies.models import Limits
from policies.scopes import scope_of
from tests.support.fake_clock import FakeClock

TEAM = scope_of("team", "search", Limits.model_validate({"shadow": {"max_concurrency": 1}}))
KEY = scope_of("key", "k1", Limits.model_validate({"enforce": "shadow", "max_concurrency": 1}))


async def test_the_event_the_row_and_the_metric_name_the_limits(clock: FakeClock) -> None:
    limiter = MemoryLimiter(None, clock=clock)
    metrics = GatewayMetrics(Traffic())
    events = []
    for _ in range(2):  # both stay in flight: the second is past both max_concurrency 1
        exchange = Exchange("r", Protocol.OPENAI, 0.0, clock(), key_id="k1", team="search")
        Settlement(limiter, await limiter.admit((KEY, TEAM), 0), exchange)  # notes it
        events.append(exchange.as_event())
    assert [e["shadow"] for e in events] == [[], ["max_concurrency", "team:search/max_concurrency"]]
    assert row_of(events[0])[-1] is None
    assert json.loads(row_of(events[1])[-1]) == events[1]["shadow"]
    for event in events:
        metrics.shadow_refusals(event)
    sample = metrics.registry.get_sample_value
    name = "modelgate_shadow_refusals_total"
    assert sample(name, {"scope": "k1", "limit": "max_concurrency"}) == 1
    assert sample(name, {"scope": "team:search", "limit": "max_concurrency"}) == 1
