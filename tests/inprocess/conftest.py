"""Fixtures of the in-process group: a policy repository, the scripted upstream, a fake clock
and the gateway serving them in the test's event loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.inprocess.harness import InProcessGateway, settings_for
from tests.inprocess.policy import (
    REFRESH_TOKEN_FILE,
    UPSTREAM_KEY,
    UPSTREAM_KEY_ENV,
    write_policy,
)
from tests.inprocess.upstream import ScriptedUpstream
from tests.support.fake_clock import FakeClock
from tests.support.policy_repo import PolicyRepo

START = dt.datetime(2025, 6, 1, 12, 0, 10, tzinfo=dt.UTC)


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    return PolicyRepo(tmp_path / "policy")


@pytest.fixture
def secrets(repo: PolicyRepo) -> dict[str, str]:
    return write_policy(repo)


@pytest.fixture
def upstream() -> ScriptedUpstream:
    return ScriptedUpstream()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def gateway(
    tmp_path: Path,
    repo: PolicyRepo,
    secrets: dict[str, str],
    upstream: ScriptedUpstream,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[InProcessGateway]:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / REFRESH_TOKEN_FILE).write_text("refresh-token-for-tests")
    settings = settings_for(repo.path, tmp_path / "state", credentials)
    async with InProcessGateway(settings, upstream, clock) as started:
        yield started
