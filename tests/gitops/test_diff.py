"""`modelgate policy diff`: operators' words, deterministic, golden files, never a hash."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from gateway.cli import main
from policies.diff import diff_policies, render_markdown
from policies.loader import load_policy
from tests.support.policy_repo import PolicyRepo

GOLDEN = Path(__file__).parent / "golden"


def digest(name: str) -> str:
    return hashlib.sha256(f"mg-secret-of-{name}".encode()).hexdigest()


def files(**texts: str) -> dict[str, bytes]:
    return {f"{name}.yaml": textwrap.dedent(text).lstrip().encode() for name, text in texts.items()}


PROVIDERS = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    credentials: [env:OPENAI_API_KEY]
  local:
    type: openai-compatible
    base_url: http://127.0.0.1:11434/v1
"""
ROUTES = """
routes:
  gpt-4o-mini:
    targets: [openai/gpt-4o-mini]
  smart:
    targets: [openai/gpt-4o, local/llama3.2]
  "local-*":
    targets: [local/*]
"""
LIMITS = """
default: {rpm: 60}
tiers:
  standard: {rpm: 120, tpm: 200000, tokens_per_day: 2000000}
  batch: {rpm: 600, tokens_per_month: 100000000}
"""
KEYS = f"""
keys:
  - id: alice
    owner: alice@example.com
    hash: sha256:{digest("alice")}
    models: ["gpt-*", "smart"]
    tier: standard
    limits: {{rpm: 300}}
    expires: 2026-12-31
  - id: bob
    hash: sha256:{digest("bob")}
    tier: standard
  - id: carol
    hash: sha256:{digest("carol")}
    disabled: true
  - id: dave
    hash: sha256:{digest("dave")}
    tier: batch
admins:
  - id: ops
    hash: sha256:{digest("ops")}
"""
BASE = {"providers": PROVIDERS, "routes": ROUTES, "limits": LIMITS, "keys": KEYS}


def changed(**replacements: tuple[str, str]) -> dict[str, bytes]:
    texts = dict(BASE)
    for name, (old, new) in replacements.items():
        assert old in texts[name], old
        texts[name] = texts[name].replace(old, new)
    return files(**texts)


SCENARIOS = {
    "keys": changed(
        keys=(
            KEYS,
            KEYS.replace(f"sha256:{digest('alice')}", f"sha256:{digest('alice-2')}")
            .replace('models: ["gpt-*", "smart"]', 'models: ["gpt-*", "claude-*"]')
            .replace("limits: {rpm: 300}", "limits: {rpm: 100, tpm: 50000}")
            .replace("expires: 2026-12-31", "expires: 2027-06-30")
            .replace(f"  - id: bob\n    hash: sha256:{digest('bob')}\n    tier: standard\n", "")
            .replace("    disabled: true\n", "")
            .replace("    tier: batch\n", "    tier: standard\n    disabled: true\n")
            .replace(
                "admins:",
                f"  - id: erin\n    owner: erin@example.com\n    hash: sha256:{digest('erin')}\n"
                '    models: ["local-*"]\n    tier: batch\n    expires: 2027-01-31\nadmins:',
            ),
        )
    ),
    "limits": changed(
        limits=(
            LIMITS,
            "default: {rpm: 30, tpm: 10000}\ntiers:\n"
            "  standard: {rpm: 240, tokens_per_day: 1000000}\n"
            "  premium: {rpm: 1200}\n",
        ),
        keys=("    tier: batch\n", "    tier: premium\n"),
    ),
    "routes_providers": changed(
        routes=(
            ROUTES,
            "routes:\n  gpt-4o-mini:\n    targets: [openai/gpt-4o-mini, local/qwen2.5]\n"
            "  smart:\n    targets: [local/llama3.2, openai/gpt-4o]\n    strategy: round-robin\n"
            "  claude:\n    targets: [anthropic/claude-sonnet-4-20250514]\n",
        ),
        providers=(
            PROVIDERS,
            PROVIDERS.replace(
                "[env:OPENAI_API_KEY]",
                "[env:OPENAI_API_KEY, file:openai-2.key]\n"
                "    cooldown_s: 30\n    headers: {OpenAI-Organization: org-1}",
            )
            + "  anthropic:\n    type: anthropic\n    base_url: https://api.anthropic.com\n"
            "    credentials: [env:ANTHROPIC_API_KEY]\n",
        ),
    ),
    "no_changes": files(**BASE),
    "route_deadlines": changed(
        routes=(
            ROUTES,
            "routes:\n  gpt-4o-mini:\n    targets: [openai/gpt-4o-mini]\n    deadline_s: 2.5\n"
            "  smart:\n    targets: [openai/gpt-4o, local/llama3.2]\n    deadline_s: 120\n"
            '  "local-*":\n    targets: [local/*]\n    deadline_s: 600\n'
            "  quick:\n    targets: [openai/gpt-4o-mini, local/llama3.2]\n    deadline_s: 5\n",
        ),
    ),
}


TEAMS = """
teams:
  org: {owner: cfo@example.com, limits: {usd_per_month: 20000}}
  search:
    parent: org
    owner: search-lead@example.com
    limits: {usd_per_month: 5000, rpm: 600}
    models: ["gpt-*"]
  research: {limits: {usd_per_day: 12.5}}
"""
MONEY_BASE = {
    **BASE,
    "teams": TEAMS,
    "keys": KEYS.replace("    tier: standard\n", "    tier: standard\n    team: search\n", 1),
    "prices": "prices:\n  local/*: {input: 0, output: 0}\n"
    "  openai/gpt-4o: {input: 2.5, output: 10}\n",
    "alerts": "alerts:\n  - scopes: teams\n    limits: [usd_per_month]\n",
}
MONEY = {
    **MONEY_BASE,
    "teams": """
teams:
  org: {owner: cfo@example.com, limits: {usd_per_month: 20000}}
  platform: {owner: sre@example.com}
  search:
    parent: platform
    owner: search-lead@example.com
    limits: {usd_per_month: 8000, usd_per_day: 400, rpm: 600}
    models: ["gpt-*", "smart"]
  ads: {parent: org, limits: {usd_per_day: 50}}
""",
    "keys": MONEY_BASE["keys"]
    .replace("    team: search\n", "    team: ads\n")
    .replace("    tier: batch\n", "    tier: batch\n    team: search\n"),
    "prices": "prices:\n  openai/gpt-4o: {input: 2, output: 10, cached_input: 1.25}\n"
    "  openai/gpt-4o-mini: {input: 0.15, output: 0.6}\n",
    "alerts": "alerts:\n  - scopes: teams\n    limits: [usd_per_month]\n"
    "  - scopes: [team:search]\n    thresholds: [90, 100]\n    webhook: env:SEARCH_ALERTS\n",
}


def test_golden_money() -> None:
    """Teams, budgets, key moves, prices and alerts in money words (golden/money.md)."""
    text = render_markdown(
        diff_policies(load_policy(files(**MONEY_BASE)), load_policy(files(**MONEY))),
        "origin/main",
        "HEAD",
    )
    golden = GOLDEN / "money.md"
    if os.environ.get("MG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str) -> None:
    old, new = load_policy(files(**BASE)), load_policy(SCENARIOS[name])
    text = render_markdown(diff_policies(old, new), "origin/main", "HEAD")
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("MG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "sha256" not in text
    assert not any(digest(who) in text for who in ("alice", "alice-2", "bob", "erin", "ops"))


def test_the_order_does_not_depend_on_file_order() -> None:
    head, *entries = KEYS.split("admins:")[0].split("  - id: ")
    reordered = head + "".join("  - id: " + e for e in reversed(entries))
    reordered += "admins:" + KEYS.split("admins:")[1]
    assert reordered != KEYS
    new = load_policy(SCENARIOS["keys"])
    one = diff_policies(load_policy(files(**BASE)), new)
    two = diff_policies(load_policy(files(**{**BASE, "keys": reordered})), new)
    assert render_markdown(one, "a", "b") == render_markdown(two, "a", "b")


def test_cli_between_revisions(policy_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in files(**BASE).items():
        (policy_repo.path / name).write_bytes(content)
    old = policy_repo.commit("base")
    for name, content in SCENARIOS["routes_providers"].items():
        (policy_repo.path / name).write_bytes(content)
    policy_repo.commit("routes")
    assert main(["policy", "diff", "--repo", str(policy_repo.path), old, "HEAD"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"### Policy changes: `{old[:7]}` → `HEAD (")
    expected = (GOLDEN / "routes_providers.md").read_text().split("\n", 1)[1]
    assert out.split("\n", 1)[1] == expected


def test_cli_reports_an_invalid_revision(
    policy_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, content in files(**BASE).items():
        (policy_repo.path / name).write_bytes(content)
    policy_repo.commit("base")
    (policy_repo.path / "routes.yaml").write_text("routes:\n  x:\n    targets: [nowhere/x]\n")
    policy_repo.commit("broken")
    assert main(["policy", "diff", "--repo", str(policy_repo.path), "HEAD~1", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert "does not validate" in out and "unknown provider 'nowhere'" in out
    assert main(["policy", "diff", "--repo", str(policy_repo.path), "nope", "HEAD"]) == 2


def test_cli_reports_a_revision_past_the_policy_bounds(
    policy_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, content in files(**BASE).items():
        (policy_repo.path / name).write_bytes(content)
    policy_repo.commit("base")
    (policy_repo.path / "keys.yaml").write_text("keys: []\n#" + "x" * 9_000_000 + "\n")
    policy_repo.commit("huge")
    assert main(["policy", "diff", "--repo", str(policy_repo.path), "HEAD~1", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert "does not validate" in out and "`keys.yaml:1:1: 9,000,011 bytes: a policy file" in out
