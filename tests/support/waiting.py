"""Waiting, in a synchronous test, for what another process does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], within_s: float = 5.0, step_s: float = 0.02) -> float:
    """Seconds until `check` held; fails if it did not within the limit."""
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        if check():
            return time.monotonic() - start
        time.sleep(step_s)
    raise AssertionError(f"not true within {within_s} s")
