"""A clock that only moves when told to, for code that takes a `clock: () -> float`."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """Epoch seconds; starts at `start` (UTC) and moves with `advance` or `set`."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def set_utc(
        self, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
    ) -> None:
        """Move to that instant in UTC, e.g. set_utc(2025, 4, 1)."""
        self.now = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()
