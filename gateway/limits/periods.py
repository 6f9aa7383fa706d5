"""Calendar quota periods in UTC: the day resets at 00:00, the month on the 1st at 00:00."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Periods:
    """The UTC day and month that an instant falls in."""

    day: str
    """YYYY-MM-DD"""
    month: str
    """YYYY-MM"""
    day_starts_at: float
    day_ends_at: float
    month_ends_at: float
    """Epoch seconds of the next reset of each period."""


def periods_at(now: float) -> Periods:
    start = (now // DAY_S) * DAY_S
    date = dt.datetime.fromtimestamp(start, dt.UTC).date()
    next_month = (
        dt.date(date.year + 1, 1, 1) if date.month == 12 else dt.date(date.year, date.month + 1, 1)
    )
    month_end = dt.datetime(next_month.year, next_month.month, 1, tzinfo=dt.UTC).timestamp()
    return Periods(
        day=date.isoformat(),
        month=date.isoformat()[:7],
        day_starts_at=start,
        day_ends_at=start + DAY_S,
        month_ends_at=month_end,
    )


class PeriodCache:
    """`periods_at`, recomputed only when the day changes (it is asked on every request)."""

    __slots__ = ("_current",)

    def __init__(self) -> None:
        self._current: Periods | None = None

    def at(self, now: float) -> Periods:
        current = self._current
        if current is None or not current.day_starts_at <= now < current.day_ends_at:
            current = self._current = periods_at(now)
        return current
