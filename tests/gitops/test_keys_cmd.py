"""`modelgate keys ...`: edits by commit that keep every other byte of the file."""

from __future__ import annotations

import difflib
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from tests.conftest import Deployment
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

KEYS = """\
# Keys of the search org.   Two spaces here, on purpose.
keys:
  # the search team's production key
  - id: search-team   # stable
    owner: 'search@example.com'
    hash: "{search}"
    models: [ "gpt-*" ,  'smart' ]   # odd spacing, kept
    tier: standard

  - id: batch-jobs
    hash: {batch}
    tier: standard
    limits:
      rpm: 5        # block style
      tpm: 1000
    # disabled: true   (a commented-out field)

# admins below
admins:
  - id: ops
    hash: {ops}
# end of file, no newline after this comment"""


@pytest.fixture
def repo(policy_repo: PolicyRepo) -> tuple[PolicyRepo, dict[str, str]]:
    secrets = {name: new_secret() for name in ("search", "batch", "ops")}
    policy_repo.write(
        "routes.yaml", "routes:\n  gpt-4o-mini:\n    targets: [p/m]\n  smart:\n    targets: [p/s]\n"
    )
    policy_repo.write(
        "providers.yaml",
        "providers:\n  p:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n",
    )
    policy_repo.write("limits.yaml", "tiers:\n  standard: {rpm: 60}\n  batch: {rpm: 600}\n")
    (policy_repo.path / "keys.yaml").write_text(
        KEYS.format(**{name: hash_of(secret) for name, secret in secrets.items()})
    )
    policy_repo.commit("start")
    return policy_repo, secrets


def keys(capsys: pytest.CaptureFixture[str], repo: PolicyRepo, *args: str) -> tuple[int, str, str]:
    code = main(["keys", *args, "--repo", str(repo.path)])
    out, err = capsys.readouterr()
    return code, out, err


def touched_lines(old: str, new: str) -> set[int]:
    """0-based lines of `old` that an edit replaced or deleted, or inserted before."""
    matcher = difflib.SequenceMatcher(a=old.splitlines(True), b=new.splitlines(True))
    touched: set[int] = set()
    for op, a0, a1, _, _ in matcher.get_opcodes():
        if op != "equal":
            touched |= set(range(a0, max(a1, a0 + 1)))
    return touched


def entry_lines(text: str, key_id: str) -> range:
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"  - id: {key_id}")))
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return range(start, end + 1)


@pytest.mark.parametrize(
    ("args", "key_id"),
    [
        (["disable", "search-team"], "search-team"),
        (["rotate", "search-team"], "search-team"),
        (["update", "search-team", "--models", "gpt-4o*", "--rpm", "10"], "search-team"),
        (["update", "batch-jobs", "--rpm", "50", "--expires", "2027-01-31"], "batch-jobs"),
        (["revoke", "batch-jobs"], "batch-jobs"),
    ],
)
def test_edits_touch_only_their_entry(
    repo: tuple[PolicyRepo, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    key_id: str,
) -> None:
    policy, _ = repo
    before = (policy.path / "keys.yaml").read_text()
    code, _, err = keys(capsys, policy, *args)
    assert code == 0, err
    after = _committed(policy)
    assert after != before
    assert touched_lines(before, after) <= set(entry_lines(before, key_id))
    assert (policy.path / "keys.yaml").read_text() == after  # clean tree: updated too
    assert policy.git("status", "--porcelain") == ""


def test_create_appends_after_the_last_key_and_keeps_the_rest(
    repo: tuple[PolicyRepo, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = repo
    before = (policy.path / "keys.yaml").read_text()
    code, out, err = keys(
        capsys,
        policy,
        "create",
        "new-team",
        "--models",
        "gpt-*",
        "claude-*",
        "--tier",
        "batch",
        "--tpm",
        "5000",
        "--owner",
        "new@example.com",
        "--expires",
        "2027-06-30",
    )
    assert code == 0, err
    secret = out.strip()
    assert out.count("\n") == 1 and secret.startswith("mg-")  # stdout: the secret alone
    after = _committed(policy)
    insert_at = before.splitlines().index("    # disabled: true   (a commented-out field)") + 1
    lines = before.splitlines(True)
    added = "".join(after.splitlines(True)[insert_at : insert_at + 8])
    assert after == "".join(lines[:insert_at]) + added + "".join(lines[insert_at:])
    assert added.startswith("  - id: new-team\n    owner: new@example.com\n")
    assert '    models: ["gpt-*", "claude-*"]\n' in added and "    limits: {tpm: 5000}\n" in added
    assert hash_of(secret) in added and secret not in policy.git("log", "-p", "--all")


def test_created_key_works_against_a_running_gateway_within_a_second(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = keys(capsys, deployment.repo, "create", "fresh", "--models", "gpt-*")
    assert code == 0, err
    started = time.monotonic()
    secret = out.strip()
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    while True:
        response = httpx.post(
            deployment.gateway.url + "/v1/chat/completions",
            json=chat,
            headers={"authorization": f"Bearer {secret}"},
        )
        if response.status_code == 200 or time.monotonic() - started > 1.0:
            break
        time.sleep(0.02)
    assert response.status_code == 200, response.text
    assert response.headers["x-modelgate-policy"] == deployment.repo.head()


def test_list_disable_enable(
    repo: tuple[PolicyRepo, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = repo
    assert keys(capsys, policy, "disable", "batch-jobs")[0] == 0
    code, out, _ = keys(capsys, policy, "list")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows == {"search-team": "active", "batch-jobs": "disabled"}
    assert "sha256" not in out
    assert keys(capsys, policy, "enable", "batch-jobs")[0] == 0
    batch_entry = _committed(policy).split("- id: batch-jobs")[1].split("# admins")[0]
    assert "\n    disabled:" not in batch_entry
    assert keys(capsys, policy, "list")[1].count("active") == 2


def test_refusals_commit_nothing(
    repo: tuple[PolicyRepo, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = repo
    head = policy.head()
    code, out, err = keys(capsys, policy, "create", "search-team")
    assert code == 1 and "exists already" in err and out == ""
    code, out, err = keys(capsys, policy, "create", "x", "--tier", "gold")
    assert code == 1 and "unknown tier 'gold'" in err and "nothing was committed" in err
    assert out == ""  # no secret for a key that was not made
    code, _, err = keys(capsys, policy, "disable", "nobody")
    assert code == 1 and "no key with id 'nobody'" in err
    assert policy.head() == head


def test_branch_author_and_push(
    repo: tuple[PolicyRepo, dict[str, str]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy, _ = repo
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(policy.path), str(origin)], check=True)
    policy.git("remote", "add", "origin", str(origin))
    main_before = policy.head()
    code, _, err = keys(
        capsys,
        policy,
        "create",
        "pr-key",
        "--branch",
        "add-pr-key",
        "--push",
        "--author",
        "Pat Reviewer <pat@example.com>",
        "-m",
        "Add pr-key for the PR flow",
    )
    assert code == 0, err
    assert policy.head() == main_before  # main (and the checkout) untouched
    tip = policy.git("rev-parse", "add-pr-key")
    assert policy.git("log", "-1", "--format=%an <%ae>|%s", tip) == (
        "Pat Reviewer <pat@example.com>|Add pr-key for the PR flow"
    )
    assert policy.git("rev-parse", "add-pr-key^") == main_before
    pushed = subprocess.run(
        ["git", "rev-parse", "refs/heads/add-pr-key"],
        cwd=origin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert pushed == tip
    # A second change on the same branch builds on it; the default author is git config's.
    assert keys(capsys, policy, "disable", "pr-key", "--branch", "add-pr-key")[0] == 0
    assert policy.git("rev-parse", "add-pr-key^") == tip
    assert policy.git("log", "-1", "--format=%an", "add-pr-key") == "Ops Tester"


def test_dirty_working_tree_is_left_alone(
    repo: tuple[PolicyRepo, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, _ = repo
    (policy.path / "limits.yaml").write_text("tiers:\n  standard: {rpm: 61}\n  batch: {rpm: 600}\n")
    code, _, err = keys(capsys, policy, "disable", "search-team")
    assert code == 0 and "working tree" not in err
    assert "disabled: true" in _committed(policy)
    assert "disabled: true" not in (policy.path / "keys.yaml").read_text().replace("# disabled", "")
    assert "{rpm: 61}" in (policy.path / "limits.yaml").read_text()


def _committed(policy: PolicyRepo, path: str = "keys.yaml") -> str:
    done = subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=policy.path, capture_output=True, text=True, check=True
    )
    return done.stdout


# teams and budgets ------------------------------------------------------------------------

TEAMS = """\
# Teams of the search org.
teams:
  search:   # the search team pays for its keys
    owner: search-lead@example.com
    limits: {usd_per_month: 8000}
  other:
    owner: other@example.com
"""


@pytest.fixture
def team_repo(repo: tuple[PolicyRepo, dict[str, str]]) -> PolicyRepo:
    policy, _ = repo
    policy.write("teams.yaml", TEAMS)
    policy.commit("teams")
    return policy


def test_create_in_a_team_with_budgets(
    team_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (team_repo.path / "keys.yaml").read_text()
    args = ["create", "alice", "--team", "search", "--usd-per-day", "0.05"]
    code, out, err = keys(capsys, team_repo, *args, "--usd-per-month", "100", "--rpm", "30")
    assert code == 0, err
    assert out.strip().startswith("mg-")
    after = _committed(team_repo)
    inserted = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines())
    assert {op for op, *_ in inserted.get_opcodes()} == {"equal", "insert"}  # the rest kept
    assert "    team: search\n" in after
    assert "    limits: {rpm: 30, usd_per_day: 0.05, usd_per_month: 100}\n" in after
    subject = "keys: create alice (team search, daily budget $0.05, monthly budget $100)"
    assert team_repo.git("log", "-1", "--format=%s") == subject
    assert "Created key alice (team search, daily budget $0.05, monthly budget $100)" in err
    _assert_checks(team_repo, capsys)
    code, out, _ = keys(capsys, team_repo, "list")
    assert code == 0 and out.splitlines()[0].split()[3] == "TEAM"
    teams = {line.split()[0]: line.split()[3] for line in out.splitlines()[1:]}
    assert teams == {"search-team": "-", "batch-jobs": "-", "alice": "search"}
    assert "usd_per_day=$0.05" in out and "usd_per_month=$100" in out


def test_update_moves_a_key_between_teams_and_out(
    team_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (team_repo.path / "keys.yaml").read_text()
    code, _, err = keys(capsys, team_repo, "update", "batch-jobs", "--team", "search")
    assert code == 0, err
    joined = _committed(team_repo)
    assert touched_lines(before, joined) <= set(entry_lines(before, "batch-jobs"))
    assert "    team: search\n" in joined and "rpm: 5        # block style" in joined
    assert team_repo.git("log", "-1", "--format=%s") == "keys: update batch-jobs (team search)"
    _assert_checks(team_repo, capsys)

    code, _, err = keys(capsys, team_repo, "update", "batch-jobs", "--team", "other")
    assert code == 0, err
    assert "    team: other\n" in _committed(team_repo)
    assert "team: search" not in _committed(team_repo)

    code, _, err = keys(capsys, team_repo, "update", "batch-jobs", "--no-team")
    assert code == 0, err
    assert _committed(team_repo) == before  # back to the bytes it started from
    assert team_repo.git("log", "-1", "--format=%s") == "keys: update batch-jobs (no team)"
    assert "Updated key batch-jobs (no team)" in err
    _assert_checks(team_repo, capsys)


def test_update_sets_a_budget_beside_the_other_limits(
    team_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = keys(capsys, team_repo, "update", "batch-jobs", "--usd-per-month", "50")
    assert code == 0, err
    entry = _committed(team_repo).split("- id: batch-jobs")[1].split("# admins")[0]
    assert "      rpm: 5        # block style\n      tpm: 1000\n" in entry
    assert "      usd_per_month: 50\n" in entry and "'50'" not in entry and '"50"' not in entry
    subject = team_repo.git("log", "-1", "--format=%s")
    assert subject == "keys: update batch-jobs (monthly budget $50)"
    _assert_checks(team_repo, capsys)


def test_unknown_team_and_bad_budgets_are_refused(
    team_repo: PolicyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    head = team_repo.head()
    code, out, err = keys(capsys, team_repo, "create", "bob", "--team", "serch")
    assert code == 1 and out == ""  # no secret for a key that was not made
    assert "nothing was committed" in err
    assert "unknown team 'serch' (teams: search, other)" in err
    code, _, err = keys(capsys, team_repo, "update", "search-team", "--team", "serch")
    assert code == 1 and "unknown team 'serch'" in err
    code, _, err = keys(capsys, team_repo, "update", "search-team", "--team", "a", "--no-team")
    assert code == 2 and "not both" in err
    for bad in ("-1", "five", "0.0000001", "nan"):
        with pytest.raises(SystemExit):
            keys(capsys, team_repo, "update", "search-team", "--usd-per-day", bad)
        assert "--usd-per-day" in capsys.readouterr().err
    assert team_repo.head() == head


def _assert_checks(policy: PolicyRepo, capsys: pytest.CaptureFixture[str]) -> None:
    """`modelgate policy check` accepts the committed revision."""
    code = main(["policy", "check", "--repo", str(policy.path), "--rev", "HEAD"])
    _, err = capsys.readouterr()
    assert code == 0, err
