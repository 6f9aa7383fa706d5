"""Stage ⑦: every finished request, recorded once, off the hot path.

`record` never blocks and never raises into the request: it fans the Exchange out to the
live event bus (and, as they come, metrics and the access log).
"""

from __future__ import annotations

from gateway.exchange import Exchange
from gateway.usage.events import EventBus


class Recorder:
    def __init__(self, events: EventBus) -> None:
        self.events = events

    def record(self, exchange: Exchange) -> None:
        self.events.publish(exchange.as_event())
