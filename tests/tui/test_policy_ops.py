"""Drafts of policy edits on a real git repository: commit, refuse, re-apply, branch, push."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from policies.edit import EditConflict, EditRefused
from policies.problems import PolicyInvalid
from tests.support.policy_repo import PolicyRepo, standard_policy
from tui import policy_ops
from tui.policy_ops import Draft

MAIN = "refs/heads/main"


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    repo = PolicyRepo(tmp_path / "policy")
    standard_policy(repo, "http://127.0.0.1:9")
    text = (repo.path / "keys.yaml").read_text()
    repo.write("keys.yaml", "# who may call what: reviewed by the platform team\n" + text)
    repo.commit("comment the keys file")
    return repo


def test_create_key_commits_only_the_hash_and_keeps_comments(repo: PolicyRepo) -> None:
    before = repo.head()
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.create_key("search-team", owner="s@example.com", tier=None))
    markdown, problems = draft.preview()
    assert problems == []
    assert "search-team" in markdown
    committed = draft.commit("tui: create key search-team", "Ann Operator <ann@example.com>")
    [new] = committed.secrets
    assert (new.key_id, new.made) == ("search-team", "created")
    assert new.secret.startswith("mg-") and new.secret not in repr(new)
    assert repo.head() == committed.result.commit and committed.result.parent == before
    keys = repo.git("show", "HEAD:keys.yaml")
    assert keys.startswith("# who may call what")
    assert "sha256:" + hashlib.sha256(new.secret.encode()).hexdigest() in keys
    assert new.secret not in keys
    assert repo.git("log", "-1", "--format=%an <%ae>") == "Ann Operator <ann@example.com>"
    assert len(draft) == 0  # the draft is spent: its secrets are handed out once


def test_an_invalid_result_is_never_committed(repo: PolicyRepo) -> None:
    before = repo.head()
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.update_key("alice", tier="gold"))
    _, problems = draft.preview()
    assert any("gold" in p.message for p in problems)
    with pytest.raises(PolicyInvalid):
        draft.commit("tui: break it", None)
    assert repo.head() == before


def test_an_impossible_edit_is_refused_at_once(repo: PolicyRepo) -> None:
    draft = Draft(repo.path, MAIN)
    with pytest.raises(EditRefused):
        draft.apply(policy_ops.set_disabled("nobody", True))
    assert len(draft) == 0


def test_a_moved_ref_is_noticed_and_the_edits_reapplied_on_the_new_head(repo: PolicyRepo) -> None:
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.create_key("late"))
    draft.apply(policy_ops.rotate_key("bob"))
    assert draft.moved_to() is None
    repo.write("limits.yaml", "default: {rpm: 5}\ntiers: {}\n")
    theirs = repo.commit("someone else: default rpm 5")
    assert draft.moved_to() == theirs
    draft.reapply_on_head()
    assert draft.base == theirs and draft.moved_to() is None
    committed = draft.commit("tui: late key", None)
    assert committed.result.parent == theirs and committed.result.retries == 0
    assert {(s.key_id, s.made) for s in committed.secrets} == {
        ("late", "created"),
        ("bob", "rotated"),
    }
    assert "rpm: 5" in repo.git("show", "HEAD:limits.yaml")  # their change is kept


def test_reapplying_names_the_edit_that_no_longer_applies(repo: PolicyRepo) -> None:
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.set_disabled("bob", True))
    text = (repo.path / "keys.yaml").read_text()
    start = text.index("  - id: bob")
    end = text.index("admins:")
    repo.write("keys.yaml", text[:start] + text[end:])
    repo.commit("someone else: remove bob")
    with pytest.raises(EditConflict, match="disable key bob"):
        draft.reapply_on_head()


def test_commit_on_a_new_branch_leaves_the_watched_ref_alone(repo: PolicyRepo) -> None:
    before = repo.head()
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.set_tier("standard", {"rpm": 120}))
    committed = draft.commit("tui: add tier standard", None, branch="ops/standard-tier")
    assert committed.result.ref == "refs/heads/ops/standard-tier"
    assert repo.head() == before
    assert "standard" in repo.git("show", "ops/standard-tier:limits.yaml")
    assert policy_ops.branch_problem(repo.path, "ops/standard-tier") is not None
    assert policy_ops.branch_problem(repo.path, "bad..name") is not None
    assert policy_ops.branch_problem(repo.path, "ops/new") is None
    again = Draft(repo.path, MAIN)
    again.apply(policy_ops.set_tier("other", {"rpm": 1}))
    with pytest.raises(EditRefused, match="exists already"):
        again.commit("tui: x", None, branch="ops/standard-tier")


def test_a_branch_is_pushed_to_origin(repo: PolicyRepo, tmp_path: Path) -> None:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert not policy_ops.has_origin(repo.path)
    repo.git("remote", "add", "origin", str(bare))
    assert policy_ops.has_origin(repo.path)
    draft = Draft(repo.path, MAIN)
    draft.apply(policy_ops.set_route("fast", ["fake/upstream-mini"], None))
    committed = draft.commit("tui: route fast", None, branch="ops/fast")
    policy_ops.push_ref(repo.path, committed.result.ref)
    pushed = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "refs/heads/ops/fast"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert pushed == committed.result.commit


def test_default_message_and_author(repo: PolicyRepo) -> None:
    assert policy_ops.default_message(["create key a", "disable key b"]) == (
        "tui: create key a; disable key b"
    )
    assert len(policy_ops.default_message(["x" * 200])) <= 70
    assert policy_ops.operator_author(repo.path) == "Ops Tester <ops@example.com>"
