"""What keeps `POST /admin/api/sync` from being replayed or hammered (per worker, on app.ctx).

A Git host signs a push webhook's body, not the time it was sent, so a captured delivery
stays valid forever. A worker remembers the deliveries it accepted (the body's digest under
each proof, and the delivery ids hosts send) and refuses one it has seen. Only proven
deliveries are remembered, so nobody without the secret can push the memory's older entries
out. Fetches themselves draw from a token bucket: a burst of a few, then one every few
seconds; the periodic sync (`--sync-interval`) goes on regardless.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

REMEMBERED_DELIVERIES = 4096
SYNC_BURST = 5
"""Syncs a worker runs at once before the rate applies."""
SYNC_EVERY_S = 2.0
"""Seconds per sync after the burst is spent."""


class DeliveryMemory:
    """The last `capacity` deliveries accepted, by any of their keys (least recent out)."""

    def __init__(self, capacity: int = REMEMBERED_DELIVERIES) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen(self, keys: Iterable[str]) -> bool:
        return any(key in self._keys for key in keys)

    def remember(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)


class TokenBucket:
    """`burst` tokens, one more every `every_s` seconds."""

    def __init__(
        self,
        burst: int = SYNC_BURST,
        every_s: float = SYNC_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst, self._every_s, self._clock = burst, every_s, clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> int:
        """0 when a token was taken, else whole seconds until one is there."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) / self._every_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0
        return max(1, math.ceil((1 - self._tokens) * self._every_s))


@dataclass(slots=True)
class SyncGuard:
    deliveries: DeliveryMemory = field(default_factory=DeliveryMemory)
    bucket: TokenBucket = field(default_factory=TokenBucket)
