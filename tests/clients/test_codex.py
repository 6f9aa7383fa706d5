"""Codex (`codex exec`, a custom model provider with wire_api = "responses") through every
provider type."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.cases import provider_cases
from tests.clients.conftest import ClientsDeployment, check
from tests.clients.programs import CODEX


@pytest.mark.parametrize("provider_type", provider_cases("codex"))
def test_codex(clients: ClientsDeployment, provider_type: str, tmp_path: Path) -> None:
    check(clients.drive(CODEX, provider_type, "gpt-5", tmp_path))
