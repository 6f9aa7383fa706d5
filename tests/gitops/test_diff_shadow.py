"""`policy diff` about shadow limits: added, changed, removed, a value moving between
`enforce: on` and `enforce: shadow`, and a whole block switched (golden/shadow.md)."""

from __future__ import annotations

import os

from policies.diff import diff_policies, render_markdown
from policies.loader import load_policy
from tests.gitops.test_diff import GOLDEN, PROVIDERS, ROUTES, digest, files

LIMITS_OLD = """
default: {rpm: 60, shadow: {rpm: 30}}
tiers:
  gold: {rpm: 600, tpm: 100000}
  silver: {rpm: 100}
  plain: {rpm: 500}
  bronze: {enforce: shadow, rpm: 10, usd_per_day: 2.5}
"""
LIMITS_NEW = """
default: {rpm: 60, shadow: {rpm: 20}}
tiers:
  gold: {enforce: shadow, rpm: 600, tpm: 100000}
  silver: {shadow: {rpm: 80}}
  plain: {rpm: 500}
  bronze: {rpm: 10, usd_per_day: 2.5}
  trial: {rpm: 10, shadow: {rpm: 5, usd_per_day: 1}}
"""
KEYS_OLD = f"""
keys:
  - {{id: k, hash: "sha256:{digest("k")}", tier: plain, limits: {{rpm: 100}}}}
  - {{id: g, hash: "sha256:{digest("g")}", tier: gold}}
  - {{id: s, hash: "sha256:{digest("s")}", tier: silver, limits: {{shadow: {{rpm: 90}}}}}}
  - {{id: d, hash: "sha256:{digest("d")}", limits: {{shadow: {{tpm: 5000}}}}}}
  - {{id: b, hash: "sha256:{digest("b")}", tier: bronze}}
"""
KEYS_NEW = KEYS_OLD.replace("limits: {rpm: 100}", "limits: {rpm: 100, shadow: {rpm: 100}}").replace(
    "limits: {shadow: {tpm: 5000}}", "limits: {rpm: 7}"
)
TEAMS_OLD = """
teams:
  search: {limits: {shadow: {rpm: 50}}}
  ads: {limits: {usd_per_day: 10}}
"""
TEAMS_NEW = """
teams:
  search: {limits: {rpm: 50}}
  ads: {limits: {usd_per_day: 10, shadow: {usd_per_day: 5}}}
  ml: {limits: {enforce: shadow, max_concurrency: 4}}
"""


def test_golden_shadow() -> None:
    old = load_policy(
        files(providers=PROVIDERS, routes=ROUTES, limits=LIMITS_OLD, keys=KEYS_OLD, teams=TEAMS_OLD)
    )
    new = load_policy(
        files(providers=PROVIDERS, routes=ROUTES, limits=LIMITS_NEW, keys=KEYS_NEW, teams=TEAMS_NEW)
    )
    text = render_markdown(diff_policies(old, new), "origin/main", "HEAD")
    golden = GOLDEN / "shadow.md"
    if os.environ.get("MG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    for line in (
        "Key `k`: rpm 100 shadow limit **added**",
        "Tier `gold`: limits **switched to `enforce: shadow`**",
        "Tier `bronze`: limits **switched to `enforce: on`**",
        "Team `search`: shadow rpm 50 → **enforced**",
        "Tier `silver`: rpm 100 **switched to shadow rpm 80**",
        "Default limits: shadow rpm **lowered** from 30 to 20",
        "Key `d`: shadow tpm 5,000 **removed**",
    ):
        assert line in text
