"""Finished-request events: a bounded replay ring and live subscribers that never slow requests.

`publish` never waits: a subscriber whose queue is full is dropped (and told why when it
next reads), so a stuck viewer costs the request path nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass(eq=False, slots=True)
class Subscription:
    queue: asyncio.Queue[tuple[int, Event]]
    dropped: str | None = None


@dataclass(slots=True)
class EventBus:
    capacity: int = 1000
    subscriber_queue: int = 1000
    _ring: deque[tuple[int, Event]] = field(init=False)
    _next_id: int = 1
    _subscribers: set[Subscription] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._ring = deque(maxlen=self.capacity)

    def publish(self, event: Event) -> None:
        item = (self._next_id, event)
        self._next_id += 1
        self._ring.append(item)
        for sub in tuple(self._subscribers):
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                sub.dropped = "the viewer fell too far behind; reconnect with Last-Event-ID"
                self._subscribers.discard(sub)

    def since(self, last_id: int) -> Iterable[tuple[int, Event]]:
        return [item for item in self._ring if item[0] > last_id]

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.Queue(self.subscriber_queue))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
