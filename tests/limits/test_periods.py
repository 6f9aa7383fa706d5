"""UTC calendar periods: the day resets at 00:00 UTC, the month on the 1st at 00:00 UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.limits.periods import PeriodCache, periods_at


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("when", "day", "month", "day_end", "month_end"),
    [
        (ts(2025, 3, 14, 12), "2025-03-14", "2025-03", ts(2025, 3, 15), ts(2025, 4, 1)),
        (ts(2025, 3, 14), "2025-03-14", "2025-03", ts(2025, 3, 15), ts(2025, 4, 1)),
        (ts(2025, 12, 31, 23, 59, 59), "2025-12-31", "2025-12", ts(2026, 1, 1), ts(2026, 1, 1)),
        (ts(2024, 2, 29, 1), "2024-02-29", "2024-02", ts(2024, 3, 1), ts(2024, 3, 1)),
        (ts(2025, 2, 1), "2025-02-01", "2025-02", ts(2025, 2, 2), ts(2025, 3, 1)),
    ],
)
def test_periods_of_an_instant(
    when: float, day: str, month: str, day_end: float, month_end: float
) -> None:
    periods = periods_at(when)
    assert (periods.day, periods.month) == (day, month)
    assert periods.day_ends_at == day_end
    assert periods.month_ends_at == month_end
    assert periods.day_starts_at <= when < periods.day_ends_at


def test_the_cache_moves_to_the_next_day_exactly_at_midnight_utc() -> None:
    cache = PeriodCache()
    assert cache.at(ts(2025, 3, 31, 23, 59, 59) + 0.999).day == "2025-03-31"
    after = cache.at(ts(2025, 4, 1))
    assert (after.day, after.month) == ("2025-04-01", "2025-04")
    assert cache.at(ts(2025, 4, 1, 8)) is after
