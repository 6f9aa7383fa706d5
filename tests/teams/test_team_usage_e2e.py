"""Through the real server: /admin/api/usage has a row per team (members, the team scope's
live budget and quota use), and a team's budget crossing thresholds of alerts.yaml shows in
/metrics as modelgate_budget_alerts_total."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.limits_e2e.calls import PER_REQUEST, chat
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
"""$1 per token: each request of the fake upstream (18 tokens) costs $18."""
TEAMS = """
teams:
  org: {owner: cfo@example.com}
  search:
    parent: org
    owner: search-lead@example.com
    limits: {usd_per_day: 20, tokens_per_month: 1000}
"""
ALERTS = "alerts:\n  - scopes: teams\n    limits: [usd_per_day]\n"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


def test_team_rows_and_alert_metrics(tmp_path: Path, upstream: FakeUpstream) -> None:
    secrets = {"a": new_secret(), "b": new_secret(), "admin": new_secret()}
    repo = PolicyRepo(tmp_path / "policy")
    repo.write("providers.yaml", PROVIDERS.format(url=upstream.url))
    repo.write("routes.yaml", ROUTES)
    repo.write("prices.yaml", PRICES)
    repo.write("teams.yaml", TEAMS)
    repo.write("alerts.yaml", ALERTS)
    repo.write(
        "keys.yaml",
        "keys:\n"
        + "".join(f"  - {{id: {k}, hash: {hash_of(secrets[k])}, team: search}}\n" for k in "ab")
        + f"admins:\n  - {{id: ops, hash: {hash_of(secrets['admin'])}}}\n",
    )
    repo.commit("a team with a $20 daily budget, alerted")
    gateway = GatewayProcess(repo.path, tmp_path / "state").start()
    admin = {"authorization": f"Bearer {secrets['admin']}"}
    try:
        assert chat(gateway.url, secrets["a"]).status_code == 200  # $18 of $20: 90%
        body = httpx.get(gateway.url + "/admin/api/usage", headers=admin).json()
        teams = {t["team"]: t for t in body["teams"]}
        assert set(teams) == {"org", "search"}
        search = teams["search"]
        assert (search["parent"], search["owner"], search["keys"]) == (
            "org",
            "search-lead@example.com",
            ["a", "b"],
        )
        assert search["limits"]["usd_per_day"]["limit"] == 20_000_000
        assert search["limits"]["usd_per_day"]["used"] == 18_000_000
        assert search["limits"]["tokens_per_month"] == search["limits"]["tokens_per_month"] | {
            "limit": 1000,
            "used": PER_REQUEST,
        }
        assert teams["org"]["limits"]["usd_per_day"]["used"] == 18_000_000
        for _ in range(50):  # the request log is written about a second behind
            body = httpx.get(gateway.url + "/admin/api/usage", headers=admin).json()
            teams = {t["team"]: t for t in body["teams"]}
            if teams["search"]["spend"]["day"]["requests"]:
                break
            time.sleep(0.1)
        for name in ("search", "org"):  # the parent's spend includes its sub-team's
            assert teams[name]["spend"]["day"] | teams[name]["spend"]["month"] == {
                "period": teams[name]["spend"]["month"]["period"],
                "cost_usd": 18.0,
                "requests": 1,
                "unpriced_requests": 0,
            }
        metrics = ""
        for _ in range(50):  # the alert fires off the request path
            metrics = httpx.get(gateway.url + "/metrics", headers=admin).text
            if 'threshold="80"' in metrics:
                break
            time.sleep(0.05)
        for threshold in ("50", "80"):
            assert (
                'modelgate_budget_alerts_total{limit="usd_per_day",scope="team:search",'
                f'threshold="{threshold}"}} 1.0'
            ) in metrics
        assert 'threshold="100"' not in metrics
        assert "team 'search' reached 80% of its daily budget ($18 of $20" in gateway.logs()
    finally:
        gateway.stop()
