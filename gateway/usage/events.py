"""Finished-request events: a bounded replay ring and live viewers that never slow requests.

`publish` never waits and does O(viewers) appends: each viewer has its own bounded backlog,
and a viewer whose backlog is full is dropped on the spot (told why when its stream task next
runs), so a stuck viewer costs the request path nothing. Events carry increasing ids; the ring
keeps the last `capacity` of them so a viewer that reconnects with Last-Event-ID misses
nothing recent.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

import orjson

from gateway.payloads import BudgetAlert, RequestEvent

FELL_BEHIND = "the viewer fell too far behind; reconnect with Last-Event-ID to resume"
SHUTTING_DOWN = "the gateway is shutting down"


@dataclass(slots=True)
class Published:
    """One event as kept in the ring: its id, fields, and its SSE bytes once encoded."""

    id: int
    event: RequestEvent | BudgetAlert
    kind: bytes = b"request"
    """The SSE event type: `request`, or `budget_alert` (gateway/alerts)."""
    _wire: bytes | None = None

    def wire(self) -> bytes:
        """The SSE frame, encoded once however many viewers send it."""
        if self._wire is None:
            data = orjson.dumps(self.event)
            self._wire = b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.kind, data)
        return self._wire


@dataclass(eq=False, slots=True)
class Subscription:
    """One live viewer: its backlog, and why it was dropped (None while it is live)."""

    limit: int
    backlog: deque[Published] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: str | None = None

    def take(self) -> list[Published]:
        """Everything waiting, oldest first; clears the wake-up flag."""
        self.ready.clear()
        items = list(self.backlog)
        self.backlog.clear()
        return items


@dataclass(slots=True)
class Replay:
    """What a reconnecting viewer gets: the kept events after its id, and whether some are gone."""

    items: list[Published]
    missed: bool


class EventBus:
    def __init__(self, capacity: int = 1000, viewer_backlog: int = 1000) -> None:
        self.capacity = capacity
        self.viewer_backlog = viewer_backlog
        self._ring: deque[Published] = deque(maxlen=capacity)
        # Ids keep growing across restarts (they start from the boot time), so a viewer's
        # Last-Event-ID from an earlier run is recognised as older than anything kept.
        self._first_id = int(time.time()) * 1_000_000 + 1
        self._next_id = self._first_id
        self._subscribers: set[Subscription] = set()
        self.published = 0
        self.dropped_viewers = 0

    def publish(self, event: RequestEvent | BudgetAlert, kind: bytes = b"request") -> None:
        item = Published(self._next_id, event, kind)
        self._next_id += 1
        self.published += 1
        self._ring.append(item)
        if not self._subscribers:
            return
        for sub in tuple(self._subscribers):
            if len(sub.backlog) >= sub.limit:
                self.drop(sub, FELL_BEHIND)
            else:
                sub.backlog.append(item)
                sub.ready.set()

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def since(self, last_id: int) -> Replay:
        """Kept events with an id above `last_id`; `missed` when some after it are gone.

        An id this run never gave out (from before a restart, or forged) replays all that is
        kept and says that some may be missing.
        """
        ring = self._ring
        if not ring:
            return Replay([], missed=last_id != self.last_id)
        first, last = ring[0].id, ring[-1].id
        if last_id == last:
            return Replay([], missed=False)
        if last_id > last or last_id < first - 1:
            return Replay(list(ring), missed=True)
        return Replay(list(islice(ring, last_id - first + 1, None)), missed=False)

    def subscribe(self) -> Subscription:
        sub = Subscription(self.viewer_backlog)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close_all(self) -> None:
        """Tell every viewer to finish (at shutdown, so connections close promptly)."""
        for sub in tuple(self._subscribers):
            sub.dropped = SHUTTING_DOWN
            sub.ready.set()
        self._subscribers.clear()

    def drop(self, sub: Subscription, reason: str) -> None:
        """Stop feeding a viewer; its stream task reads `reason` and ends."""
        if sub not in self._subscribers:
            return
        sub.dropped = reason
        sub.backlog.clear()
        sub.ready.set()
        self._subscribers.discard(sub)
        self.dropped_viewers += 1

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
