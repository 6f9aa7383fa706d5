"""Gemini CLI (`gemini -p`, GOOGLE_GEMINI_BASE_URL) through every provider type."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.cases import provider_cases
from tests.clients.conftest import ClientsDeployment, check
from tests.clients.programs import GEMINI_CLI


@pytest.mark.parametrize("provider_type", provider_cases("gemini-cli"))
def test_gemini_cli(clients: ClientsDeployment, provider_type: str, tmp_path: Path) -> None:
    check(clients.drive(GEMINI_CLI, provider_type, "gemini-2.5-pro", tmp_path))
