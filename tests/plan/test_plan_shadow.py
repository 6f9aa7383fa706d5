"""`policy plan` with shadow limits: what they would refuse is reported per scope and limit,
never as a refusal (a shadow limit serves every request)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.plan.fixture import Row, T, secret_of, write_log
from tests.plan.test_plan_cli import check_golden
from tests.support.policy_repo import PolicyRepo, hash_of

TEAMS_OLD = "teams:\n  search: {}\n  data: {}\n"
TEAMS_NEW = "teams:\n  search: {}\n  data: {limits: {enforce: shadow, max_concurrency: 1}}\n"
LIMITS_OLD = {"alice": "{rpm: 100}", "bob": "{enforce: shadow, tpm: 1000}"}
LIMITS_NEW = {
    "alice": "{rpm: 100, shadow: {rpm: 2}}",
    "bob": "{enforce: shadow, tpm: 1000}",
    "frank": "{enforce: shadow, tokens_per_day: 1000}",
}
KEYS = {"alice": "search", "bob": "search", "carol": "data", "frank": None}


def _revision(repo: PolicyRepo, new: bool) -> str:
    repo.write(
        "providers.yaml",
        "providers:\n  openai:\n    type: openai\n    base_url: https://api.openai.com/v1\n"
        "    credentials: []\n",
    )
    repo.write("routes.yaml", "routes:\n  gpt: {targets: [openai/gpt-4o-mini]}\n")
    repo.write("teams.yaml", TEAMS_NEW if new else TEAMS_OLD)
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    repo.write("prices.yaml", 'prices:\n  "openai/*": {input: 1, output: 2}\n')
    lines = ["keys:"]
    for key_id, team in KEYS.items():
        lines += [f"  - id: {key_id}", f"    hash: {hash_of(secret_of(key_id))}"]
        if team:
            lines.append(f"    team: {team}")
        limits = (LIMITS_NEW if new else LIMITS_OLD).get(key_id)
        if limits:
            lines.append(f"    limits: {limits}")
    repo.write("keys.yaml", "\n".join(lines) + "\n")
    return repo.commit("shadow limits" if new else "before")


def _trace() -> list[Row]:
    rows: list[Row] = [(T + s, "alice", "gpt", 200, None, 100, 10, 5) for s in range(4)]
    rows += [(T + 10 + s, "bob", "gpt", 200, None, 100, 400, 0) for s in range(3)]
    rows += [(T + 20, "carol", "gpt", 200, None, 5000, 10, 10)]  # in flight 5 s...
    rows += [(T + 21, "carol", "gpt", 200, None, 100, 10, 10)]  # ...beside team data's 2nd
    rows += [(T + s, "frank", "gpt", 200, None, 100, 600, 0) for s in (50, 120, 200)]
    return rows


@pytest.fixture
def shadow_change(tmp_path: Path) -> tuple[Path, Path, str, str]:
    repo = PolicyRepo(tmp_path / "policy")
    old = _revision(repo, new=False)
    repo.git("tag", "old")
    new = _revision(repo, new=True)
    repo.git("tag", "new")
    write_log(tmp_path / "state", _trace())
    return repo.path, tmp_path / "state", old, new


def _plan(
    change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str], *extra: str
) -> str:
    repo, state, old, new = change
    argv = ["policy", "plan", "old", "new", "--repo", str(repo), "--state-dir", str(state)]
    assert main([*argv, "--since", "2025-06-01", *extra]) == 0
    out = capsys.readouterr().out
    for sha, name in ((old, "OLDSHA"), (new, "NEWSHA")):
        out = out.replace(sha, name).replace(sha[:7], name)
    return out


def test_shadow_limits_are_reported_as_would_be_refusals(
    shadow_change: tuple[Path, Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    markdown = _plan(shadow_change, capsys)
    check_golden("plan_shadow.md", markdown)
    assert "Newly refused: 0**" in markdown and "#### Newly refused" not in markdown
    assert "Limits that would refuse" not in markdown
    data = json.loads(_plan(shadow_change, capsys, "--format", "json"))
    check_golden("plan_shadow.json", json.dumps(data, indent=2) + "\n")
    assert (data["newly_refused"], data["limits"]) == (0, [])
    found = {
        (hit["scope"], hit["limit"]): (hit["value"], hit["would_refuse"], hit["old_would_refuse"])
        for hit in data["would_be_refused_if_enforced"]
    }
    assert found == {
        ("key 'alice'", "rpm"): ("2", 2, 0),  # 4 requests in 4 s against a shadow rpm 2
        ("key 'bob'", "tpm"): ("1,000", 1, 1),  # the same shadow tpm in both revisions
        ("team 'data'", "max_concurrency"): ("1", 1, 0),
        ("key 'frank'", "tokens_per_day"): ("1,000", 1, 0),
    }
