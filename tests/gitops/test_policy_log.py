"""`modelgate policy log`: who changed what and when, per key or team, from git."""

from __future__ import annotations

import pytest

from gateway.cli import main
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret, standard_policy


def log(capsys: pytest.CaptureFixture[str], repo: PolicyRepo, *args: str) -> tuple[int, str, str]:
    code = main(["policy", "log", *args, "--repo", str(repo.path)])
    out, err = capsys.readouterr()
    return code, out, err


def entries(out: str) -> list[tuple[str, list[str]]]:
    """(subject line, its diff lines) per commit printed."""
    found: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if line.startswith("    - "):
            found[-1][1].append(line[6:])
        else:
            found.append((line, []))
    return found


def commit_as(repo: PolicyRepo, who: str, message: str) -> str:
    repo.git("add", "-A")
    repo.git("commit", "-q", "--author", who, "-m", message)
    return repo.head()


@pytest.fixture
def story(policy_repo: PolicyRepo) -> dict[str, str]:
    standard_policy(policy_repo, "http://127.0.0.1:9")
    commits = {"initial": policy_repo.head()}
    policy_repo.write("limits.yaml", "default: {}\ntiers:\n  gold: {rpm: 100}\n")
    commits["tier"] = commit_as(policy_repo, "Tia Tiers <tia@example.com>", "add gold tier")
    keys = (policy_repo.path / "keys.yaml").read_text()
    keys = keys.replace("  - id: bob\n", "  - id: bob\n    tier: gold\n")
    policy_repo.write("keys.yaml", keys)
    commits["bob"] = commit_as(policy_repo, "Bea Keys <bea@example.com>", "bob to gold")
    policy_repo.write("limits.yaml", "default: {}\ntiers:\n  gold: {rpm: 50}\n")
    commits["lower"] = commit_as(policy_repo, "Tia Tiers <tia@example.com>", "lower gold")
    policy_repo.write("routes.yaml", "routes:\n  other:\n    targets: [fake/x]\n")
    commits["routes"] = commit_as(policy_repo, "Rui Routes <rui@example.com>", "routes only")
    return commits


def test_every_commit_newest_first_with_who_when_and_its_diff(
    policy_repo: PolicyRepo, story: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = log(capsys, policy_repo)
    assert code == 0, err
    found = entries(out)
    shas = [line.split()[0] for line, _ in found]
    order = ("routes", "lower", "bob", "tier", "initial")
    assert shas == [story[name][:12] for name in order]
    head_line, head_diff = found[0]
    assert "Rui Routes <rui@example.com>  routes only" in head_line
    assert head_line.split()[1].count("-") == 2  # the date: YYYY-MM-DD
    assert "**Added** route `other` → `fake/x`." in head_diff
    assert "**Removed** route `gpt-4o-mini`." in head_diff
    assert any("**Added** key `alice`" in line for line in found[-1][1])
    assert "sha256" not in out  # never a hash


def test_key_filter_keeps_its_own_changes_and_limits_that_name_it(
    policy_repo: PolicyRepo, story: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = log(capsys, policy_repo, "--key", "bob")
    assert code == 0
    found = entries(out)
    assert [line.split()[0] for line, _ in found] == [
        story[name][:12] for name in ("lower", "bob", "initial")
    ]
    assert found[0][1] == ["Tier `gold`: rpm **lowered** from 100 to 50, affecting 1 key: `bob`."]
    assert "Bea Keys" in found[1][0]
    assert found[1][1] == ["Key `bob`: tier set to `gold` (rpm 100)."] or all(
        "`bob`" in line for line in found[1][1]
    )
    assert all("alice" not in line for _, lines in found for line in lines)  # only bob's lines

    code, out, _ = log(capsys, policy_repo, "--key", "bob", "-n", "1")
    assert [line.split()[0] for line, _ in entries(out)] == [story["lower"][:12]]

    code, out, err = log(capsys, policy_repo, "--key", "nobody")
    assert code == 0 and out == "" and "No commit on main changes key nobody" in err


def test_team_filter_follows_teams_yaml_and_its_keys(
    policy_repo: PolicyRepo, story: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = log(capsys, policy_repo, "--team", "search")  # no teams.yaml yet
    assert code == 0 and out == "" and "changes team search" in err

    policy_repo.write("teams.yaml", "teams:\n  search:\n    owner: search@example.com\n")
    made = commit_as(policy_repo, "Tom Teams <tom@example.com>", "search team")
    keys = (policy_repo.path / "keys.yaml").read_text()
    policy_repo.write("keys.yaml", keys.replace("  - id: bob\n", "  - id: bob\n    team: search\n"))
    joined = commit_as(policy_repo, "Bea Keys <bea@example.com>", "bob joins search")
    policy_repo.write("keys.yaml", keys.replace("  - id: bob\n", "  - id: bob\n    team: search\n"))
    policy_repo.write("limits.yaml", "default: {}\ntiers:\n  gold: {rpm: 40}\n")
    tier = commit_as(policy_repo, "Tia Tiers <tia@example.com>", "gold to 40")
    policy_repo.write("teams.yaml", "teams:\n  search:\n    limits: {rpm: 10}\n")
    limited = commit_as(policy_repo, "Tom Teams <tom@example.com>", "limit search")
    keys = (policy_repo.path / "keys.yaml").read_text()
    secret = hash_of(new_secret())
    policy_repo.write(
        "keys.yaml", keys.replace("admins:", f"  - id: carol\n    hash: {secret}\nadmins:")
    )
    commit_as(policy_repo, "Bea Keys <bea@example.com>", "carol, no team")

    code, out, err = log(capsys, policy_repo, "--team", "search")
    assert code == 0, err
    found = entries(out)
    assert [line.split()[0] for line, _ in found] == [c[:12] for c in (limited, tier, joined, made)]
    # bob is in the team: a change of his tier's limits is a change to the team's keys
    assert any("`bob`" in line for line in found[1][1])
    assert any("search" in line and "`bob`" in line for line in found[2][1])
    assert any("team `search`" in line.lower() for line in found[3][1])


def test_a_commit_that_does_not_validate_is_kept_when_its_lines_name_the_key(
    policy_repo: PolicyRepo, story: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    keys = (policy_repo.path / "keys.yaml").read_text()
    policy_repo.write(
        "keys.yaml", keys.replace("  - id: bob\n", "  - id: bob\n    tier: platinum\n")
    )
    bad = commit_as(policy_repo, "Bea Keys <bea@example.com>", "bob to a tier that is not there")
    _, out, _ = log(capsys, policy_repo, "--key", "bob", "-n", "1")
    first = entries(out)[0]
    assert first[0].startswith(bad[:12]) and first[1] == [
        "does not validate: the gateway refuses it"
    ]
    _, out, _ = log(capsys, policy_repo, "--key", "alice", "-n", "1")
    assert not out.startswith(bad[:12])


def test_control_characters_in_a_subject_are_shown_escaped(
    policy_repo: PolicyRepo, story: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy_repo.write("routes.yaml", "routes:\n  esc:\n    targets: [fake/x]\n")
    commit_as(policy_repo, "Eve <eve@example.com>", "innocent\x1b[2Jwiped")
    code, out, _ = log(capsys, policy_repo, "-n", "1")
    assert code == 0 and "\x1b" not in out and "innocent\\x1b[2Jwiped" in out
