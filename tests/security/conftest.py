"""The property-based suite's numbers in pytest's summary: requests sent, the slowest one."""

from __future__ import annotations

import pytest

from tests.security.fuzz_deployment import TIMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMES.requests:
        terminalreporter.write_line(
            f"fuzz: {TIMES.requests} requests, {TIMES.reached} sent on upstream; "
            f"slowest {TIMES.seconds * 1000:.0f} ms ({TIMES.what})"
        )
