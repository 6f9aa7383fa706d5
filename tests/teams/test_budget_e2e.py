"""A team's USD budget through the real server: requests are served until the team has spent
its budget, then refused with 429 insufficient_quota naming the team (any of its keys)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.limits_e2e.calls import chat
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

PROVIDERS = """
providers:
  fake:
    type: openai
    base_url: {url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
"""
ROUTES = "routes:\n  gpt-4o-mini: {targets: [fake/gpt-4o-mini]}\n"
PRICES = "prices:\n  fake/gpt-4o-mini: {input: 1000000, output: 1000000}\n"
"""$1 per token: every request of the fake upstream (18 tokens) costs $18."""
TEAMS = "teams:\n  search:\n    limits: {usd_per_day: 20}\n"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


def test_a_team_budget_stops_every_key_of_the_team(tmp_path: Path, upstream: FakeUpstream) -> None:
    secrets = {"a": new_secret(), "b": new_secret(), "admin": new_secret()}
    repo = PolicyRepo(tmp_path / "policy")
    repo.write("providers.yaml", PROVIDERS.format(url=upstream.url))
    repo.write("routes.yaml", ROUTES)
    repo.write("prices.yaml", PRICES)
    repo.write("teams.yaml", TEAMS)
    repo.write(
        "keys.yaml",
        "keys:\n"
        + "".join(f"  - {{id: {k}, hash: {hash_of(secrets[k])}, team: search}}\n" for k in "ab")
        + f"admins:\n  - {{id: ops, hash: {hash_of(secrets['admin'])}}}\n",
    )
    repo.commit("a team with a $20 daily budget")
    gateway = GatewayProcess(repo.path, tmp_path / "state").start()
    try:
        first = chat(gateway.url, secrets["a"])
        assert first.status_code == 200, first.text
        if "x-modelgate-cost-usd" not in first.headers:
            pytest.skip("cost unavailable: this build prices no request (no x-modelgate-cost-usd)")
        second = chat(gateway.url, secrets["b"])  # $18 of $20 spent: admitted, overshoots
        assert second.status_code == 200, second.text
        for key in "ab":
            refused = chat(gateway.url, secrets[key])
            assert refused.status_code == 429, refused.text
            error = refused.json()["error"]
            assert error["code"] == "insufficient_quota"
            assert "daily budget of team 'search' is spent ($36 of $20)" in error["message"]
            assert "resets at 00:00 UTC" in error["message"]
            assert int(refused.headers["Retry-After"]) >= 1
    finally:
        gateway.stop()
