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
