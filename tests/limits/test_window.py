"""The 60-bucket sliding window: exact counts, expiry on the second, constant memory."""

from __future__ import annotations

import math
import random
import sys

from gateway.limits.window import WINDOW_S, SlidingWindow

T0 = 1_700_000_000  # a whole epoch second


def test_counts_what_was_added_within_the_last_60_seconds() -> None:
    window = SlidingWindow()
    window.add(T0, 3)
    window.add(T0 + 30, 2)
    assert window.total == 5
    window.advance(T0 + 59)
    assert window.total == 5
    window.advance(T0 + 60)  # the units of second T0 slide out at T0 + 60
    assert window.total == 2
    window.advance(T0 + 90)
    assert window.total == 0


def test_a_long_gap_empties_the_window() -> None:
    window = SlidingWindow()
    for s in range(10):
        window.add(T0 + s, 1)
    window.advance(T0 + 10_000)
    assert window.total == 0
    window.add(T0 + 10_000, 4)
    assert window.total == 4


def test_a_clock_stepping_back_counts_in_the_newest_second() -> None:
    window = SlidingWindow()
    window.add(T0 + 5, 1)
    assert window.add(T0 + 2, 1) == T0 + 5
    window.advance(T0 + 64)
    assert window.total == 2
    window.advance(T0 + 65)
    assert window.total == 0


def test_seconds_until_freed_walks_from_the_oldest_bucket() -> None:
    window = SlidingWindow()
    window.add(T0, 2)
    window.add(T0 + 10, 3)
    now = T0 + 20.5
    window.advance(int(now))
    assert window.seconds_until_freed(now, 0) == 0.0
    assert window.seconds_until_freed(now, 1) == T0 + 60 - now
    assert window.seconds_until_freed(now, 2) == T0 + 60 - now
    assert window.seconds_until_freed(now, 3) == T0 + 70 - now
    assert math.isinf(window.seconds_until_freed(now, 6))


def test_take_back_removes_only_inside_the_window_and_never_below_zero() -> None:
    window = SlidingWindow()
    window.add(T0, 100)
    window.take_back(T0, 30)
    assert window.total == 70
    window.take_back(T0, 500)
    assert window.total == 0
    window.add(T0 + 1, 10)
    window.advance(T0 + 60)  # second T0 has slid out, T0 + 1 not yet
    window.take_back(T0, 10)
    assert window.total == 10


def test_memory_is_constant_whatever_the_number_of_units() -> None:
    window = SlidingWindow()
    size = sys.getsizeof(window._buckets)
    for i in range(100_000):
        window.add(T0 + i // 500, 1)  # 500 per second for 200 seconds
    assert len(window._buckets) == WINDOW_S
    assert sys.getsizeof(window._buckets) == size
    assert window.total == 60 * 500


def test_the_oldest_counted_second_is_tracked_through_slides_and_take_backs() -> None:
    rng = random.Random(7)
    window = SlidingWindow()
    sec = T0
    for _ in range(5000):
        sec += rng.choice((0, 0, 0, 1, 1, 2, 7, 61))
        action = rng.random()
        if action < 0.6:
            window.add(sec, rng.choice((0, 1, 5)))
        elif action < 0.9:
            window.take_back(sec - rng.randrange(0, 70), rng.choice((1, 3, 100)))
        else:
            window.advance(sec)
        now = window.advance(sec) + 0.5
        expected = window.seconds_until_freed(now, 1) if window.total else 0.0
        assert window.seconds_until_next_freed(now) == expected
        assert window.total == sum(window._buckets) >= 0
