"""teams.yaml: located errors for unknown and cyclic parents and unknown teams; scopes and
the models ceiling compiled into each key's principal."""

from __future__ import annotations

import textwrap

import pytest

from policies.loader import PolicyInvalid, load_policy
from policies.snapshot import Snapshot
from tests.support.policy_repo import hash_of, new_secret

ROUTES = """
routes:
  gpt-4o-mini: {targets: [local/gpt-4o-mini]}
  gpt-4o: {targets: [local/gpt-4o]}
  claude-haiku: {targets: [local/claude-haiku]}
"""
PROVIDERS = "providers:\n  local: {type: openai-compatible, base_url: http://127.0.0.1:9/v1}\n"
TEAMS = """
teams:
  org:
    owner: cfo@example.com
    limits: {usd_per_month: 1000.5}
    models: ["gpt-*"]
  search:
    parent: org
    limits: {rpm: 10, usd_per_day: 2.25}
    models: ["gpt-4o-mini", "claude-*"]
"""
H1, H2 = hash_of(new_secret()), hash_of(new_secret())


def keys(team: str = "search", models: str = "") -> str:
    return f"""
keys:
  - id: k1
    hash: {H1}
    team: {team}
    limits: {{rpm: 5, usd_per_day: 0.5}}{models}
  - id: loner
    hash: {H2}
"""


def files(teams: str | None = TEAMS, keys_yaml: str | None = None) -> dict[str, bytes]:
    texts = {
        "providers.yaml": PROVIDERS,
        "routes.yaml": ROUTES,
        "keys.yaml": keys_yaml if keys_yaml is not None else keys(),
        "teams.yaml": teams,
    }
    return {n: textwrap.dedent(t).lstrip().encode() for n, t in texts.items() if t is not None}


def problems_of(policy_files: dict[str, bytes]) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(policy_files)
    return [str(p) for p in caught.value.problems]


def test_unknown_parent_is_located_at_the_parent() -> None:
    teams = "teams:\n  search:\n    parent: orgg\n  org: {}\n"
    assert problems_of(files(teams)) == [
        "teams.yaml:3:13: unknown parent team 'orgg' (teams: search, org): define it in "
        "teams.yaml or fix the name"
    ]


def test_a_cycle_is_reported_once_at_its_first_team() -> None:
    teams = "teams:\n  a: {parent: b}\n  b: {parent: c}\n  c: {parent: a}\n  search: {}\n"
    assert problems_of(files(teams)) == [
        "teams.yaml:2:15: teams form a cycle (a -> b -> c -> a): a team cannot be its own "
        "ancestor; remove or change one of these parents"
    ]


def test_a_team_that_is_its_own_parent_is_a_cycle() -> None:
    teams = "teams:\n  search: {parent: search}\n"
    assert problems_of(files(teams)) == [
        "teams.yaml:2:20: teams form a cycle (search -> search): a team cannot be its own "
        "ancestor; remove or change one of these parents"
    ]


def test_unknown_team_on_a_key_is_located_at_the_key() -> None:
    assert problems_of(files(keys_yaml=keys(team="serch"))) == [
        "keys.yaml:4:11: unknown team 'serch' (teams: org, search): define it in teams.yaml "
        "or fix the name"
    ]


def test_a_team_without_teams_yaml_is_unknown() -> None:
    assert problems_of(files(teams=None)) == [
        "keys.yaml:4:11: unknown team 'search' (teams.yaml defines no teams): define it in "
        "teams.yaml or fix the name"
    ]


def test_budgets_take_at_most_six_decimals_and_numbers_only() -> None:
    teams = "teams:\n  search: {limits: {usd_per_day: 0.0000001, usd_per_month: '5'}}\n  org: {}\n"
    found = problems_of(files(teams))
    assert len(found) == 2
    assert found[0].startswith("teams.yaml:2:34: ")
    assert found[1].startswith("teams.yaml:2:60: ")
    assert "e.g. 25 or 2.5" in found[1]


def test_scopes_are_the_key_then_its_team_then_each_ancestor_with_budgets_in_micros() -> None:
    snapshot = Snapshot.compile(load_policy(files()), "c1")
    k1 = next(p for p in snapshot.principals_by_hash.values() if p.key_id == "k1")
    assert [(s.id, s.label) for s in k1.scopes] == [
        ("k1", "key 'k1'"),
        ("team:search", "team 'search'"),
        ("team:org", "team 'org'"),
    ]
    assert [(s.usd_per_day, s.usd_per_month) for s in k1.scopes] == [
        (500_000, None),
        (2_250_000, None),
        (None, 1_000_500_000),
    ]
    assert all(s.checked for s in k1.scopes)
    loner = next(p for p in snapshot.principals_by_hash.values() if p.key_id == "loner")
    assert [s.id for s in loner.scopes] == ["loner"] and not loner.scopes[0].checked


def test_a_key_may_use_a_model_only_if_its_team_and_every_ancestor_allow_it() -> None:
    snapshot = Snapshot.compile(load_policy(files()), "c1")
    k1 = snapshot.principals_by_hash[H1.removeprefix("sha256:")]
    assert k1.may_use("gpt-4o-mini")  # key: all; search: yes; org: gpt-*
    assert not k1.may_use("gpt-4o")  # search does not allow it
    assert not k1.may_use("claude-haiku")  # search does, its parent org does not
    assert snapshot.route_names_for(k1) == ["gpt-4o-mini"]
    narrowed = Snapshot.compile(
        load_policy(files(keys_yaml=keys(models="\n    models: [gpt-4o]"))), "c"
    )
    assert not narrowed.principals_by_hash[H1.removeprefix("sha256:")].may_use("gpt-4o-mini")
    loner = snapshot.principals_by_hash[H2.removeprefix("sha256:")]
    assert loner.may_use("claude-haiku")  # no team: no ceiling
