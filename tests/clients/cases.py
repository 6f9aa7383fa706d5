"""Which client and provider-type runs are expected to pass today.

Since issue 13 every client passes on every provider type. A combination that breaks is
taken out of PASSING and so marked a strict xfail: the mark turns into a failure the day it
passes again, so the marks cannot go stale.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.clients.conftest import PROVIDER_TYPES

PASSING: dict[str, set[str]] = {
    "claude-code": set(PROVIDER_TYPES),
    "codex": set(PROVIDER_TYPES),
    "gemini-cli": set(PROVIDER_TYPES),
}


def provider_cases(program: str) -> list[Any]:
    return [
        pytest.param(
            kind,
            marks=()
            if kind in PASSING[program]
            else pytest.mark.xfail(strict=True, reason="issue 13: translated route"),
        )
        for kind in PROVIDER_TYPES
    ]
