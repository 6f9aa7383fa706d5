"""Claude Code (`claude -p`, ANTHROPIC_BASE_URL) through every provider type."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.cases import provider_cases
from tests.clients.conftest import ClientsDeployment, check
from tests.clients.programs import CLAUDE_CODE


@pytest.mark.parametrize("provider_type", provider_cases("claude-code"))
def test_claude_code(clients: ClientsDeployment, provider_type: str, tmp_path: Path) -> None:
    check(clients.drive(CLAUDE_CODE, provider_type, "claude-sonnet-4-5", tmp_path))
