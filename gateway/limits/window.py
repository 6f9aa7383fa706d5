"""A sliding 60-second window in 60 per-second buckets: constant memory, exact counts.

Why buckets and not a log of timestamps: tpm counts tokens, not events, and a log of rpm
timestamps grows with the limit (rpm 100,000 means 100,000 floats per key). Sixty integers
per key hold any rate. Counts are exact (every admission is added before the next is
checked); only expiry is rounded: a unit counted during second s leaves the window at
s + 60, up to one second earlier than a timestamp log would release it.
"""

from __future__ import annotations

import math

WINDOW_S = 60
_EMPTY = (0,) * WINDOW_S


class SlidingWindow:
    """Units (requests or tokens) counted in the last 60 whole seconds."""

    __slots__ = ("_buckets", "_head", "_oldest", "total")

    def __init__(self) -> None:
        self._buckets = list(_EMPTY)
        self._head = 0
        """The newest second the window has advanced to."""
        self._oldest = 0
        """The oldest second with units in it (meaningful while total > 0)."""
        self.total = 0

    def advance(self, sec: int) -> int:
        """Drop the buckets that slid out by second `sec`; returns the second now current.

        A clock that steps back keeps counting in the newest second, so nothing is lost.
        """
        head = self._head
        if sec <= head:
            return head
        buckets = self._buckets
        if sec - head >= WINDOW_S:
            if self.total:
                buckets[:] = _EMPTY
                self.total = 0
        else:
            for s in range(head + 1, sec + 1):
                i = s % WINDOW_S
                if buckets[i]:
                    self.total -= buckets[i]
                    buckets[i] = 0
        self._head = sec
        if self.total and self._oldest <= sec - WINDOW_S:
            self._find_oldest(sec - WINDOW_S + 1)
        return sec

    def add(self, sec: int, units: int) -> int:
        """Count `units` in second `sec`; returns the second they were counted in."""
        sec = self.advance(sec)
        if units > 0:
            if not self.total:
                self._oldest = sec
            self._buckets[sec % WINDOW_S] += units
            self.total += units
        return sec

    def take_back(self, sec: int, units: int) -> None:
        """Remove up to `units` counted in second `sec`, if that second is still in the window."""
        head = self._head
        if units <= 0 or not head - WINDOW_S < sec <= head:
            return
        i = sec % WINDOW_S
        taken = min(units, self._buckets[i])
        self._buckets[i] -= taken
        self.total -= taken
        if self.total and not self._buckets[i] and sec == self._oldest:
            self._find_oldest(sec + 1)

    def seconds_until_next_freed(self, now: float) -> float:
        """Seconds from `now` until the oldest counted unit leaves (0 if none is counted)."""
        return max(0.0, self._oldest + WINDOW_S - now) if self.total else 0.0

    def seconds_until_freed(self, now: float, units: int) -> float:
        """Seconds from `now` until at least `units` counted units have left the window.

        Infinite when fewer than `units` are counted (waiting cannot free them).
        """
        if units <= 0:
            return 0.0
        freed = 0
        head = self._head
        for s in range(head - WINDOW_S + 1, head + 1):
            freed += self._buckets[s % WINDOW_S]
            if freed >= units:
                return max(0.0, s + WINDOW_S - now)
        return math.inf

    def _find_oldest(self, start: int) -> None:
        buckets = self._buckets
        for s in range(start, self._head + 1):
            if buckets[s % WINDOW_S]:
                self._oldest = s
                return
