"""`modelgate policy rollback REV`: one commit with REV's tree, by compare-and-swap."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from policies import rollback
from policies.check import check_files
from tests.conftest import Deployment
from tests.gitops.support import policy_status
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret, standard_policy
from tests.support.waiting import eventually


@pytest.fixture
def history(policy_repo: PolicyRepo) -> dict[str, str]:
    """initial -> tighter limits -> key carol added: the commits by name."""
    standard_policy(policy_repo, "http://127.0.0.1:9")
    commits = {"initial": policy_repo.head()}
    policy_repo.write("limits.yaml", "default: {rpm: 30}\ntiers: {}\n")
    commits["limits"] = policy_repo.commit("default rpm 30")
    keys = (policy_repo.path / "keys.yaml").read_text()
    carol = f"  - id: carol\n    hash: {hash_of(new_secret())}\n"
    policy_repo.write("keys.yaml", keys.replace("admins:", carol + "admins:"))
    commits["carol"] = policy_repo.commit("add carol")
    return commits


def run(capsys: pytest.CaptureFixture[str], repo: PolicyRepo, *args: str) -> tuple[int, str, str]:
    code = main(["policy", "rollback", *args, "--repo", str(repo.path)])
    out, err = capsys.readouterr()
    return code, out, err


def tree_of(repo: PolicyRepo, rev: str) -> str:
    return repo.git("rev-parse", f"{rev}^{{tree}}")


def test_one_commit_with_the_old_tree_naming_what_it_undoes(
    policy_repo: PolicyRepo, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, policy_repo, history["initial"][:7])
    assert code == 0, err
    head = policy_repo.head()
    assert policy_repo.git("rev-parse", "HEAD^") == history["carol"]  # on top: nothing lost
    assert tree_of(policy_repo, head) == tree_of(policy_repo, history["initial"])
    message = policy_repo.git("log", "-1", "--format=%B")
    subject = message.splitlines()[0]
    initial, limits, carol = (history[n][:7] for n in ("initial", "limits", "carol"))
    assert subject == f"Roll back to {initial} (undoes {carol}, {limits})"
    assert f"- {carol} add carol" in message and f"- {limits} default rpm 30" in message
    assert "**Revoked** key `carol`" in message  # the policy diff, in operators' words
    assert "no longer limited (was 30)" in message
    assert "Revoked** key `carol`" in out  # the plan is printed too
    assert "undoes 2 commit(s)" in err
    assert policy_repo.git("status", "--porcelain") == ""  # the checkout follows
    assert "carol" not in (policy_repo.path / "keys.yaml").read_text()


def test_a_file_added_since_is_removed_from_the_commit_and_the_checkout(
    policy_repo: PolicyRepo, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy_repo.write("prices.yaml", "prices: {}\n")
    policy_repo.commit("prices file")
    code, _, err = run(capsys, policy_repo, "HEAD~1")
    assert code == 0, err
    assert policy_repo.git("ls-tree", "--name-only", "HEAD").split() == sorted(
        ["keys.yaml", "limits.yaml", "providers.yaml", "routes.yaml"]
    )
    assert not (policy_repo.path / "prices.yaml").exists()
    assert policy_repo.git("status", "--porcelain") == ""


def test_refusals_write_nothing(
    policy_repo: PolicyRepo, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy_repo.git("checkout", "-q", "-b", "side", history["initial"])
    policy_repo.write("routes.yaml", "routes:\n  other:\n    targets: [fake/x]\n")
    side = policy_repo.commit("a commit that never was on main")
    policy_repo.git("checkout", "-q", "main")
    policy_repo.git("revert", "--no-edit", "HEAD")  # same tree as `limits`, another commit
    refs = policy_repo.git("for-each-ref")

    code, _, err = run(capsys, policy_repo, side)
    assert code == 1 and "is not an ancestor of refs/heads/main" in err
    assert "merge it or open a pull request" in err
    for same in ("main", history["limits"]):  # the head itself, or a commit with its tree
        code, _, err = run(capsys, policy_repo, same)
        assert code == 1 and "nothing to undo" in err
    code, _, err = run(capsys, policy_repo, "no-such-rev")
    assert code == 1 and "'no-such-rev' not found" in err
    code, _, err = run(capsys, policy_repo, "main", "--branch", "no-such-branch")
    assert code == 1 and "refs/heads/no-such-branch not found" in err
    assert policy_repo.git("for-each-ref") == refs
    # On the side branch, the same commit is an ancestor: --branch picks what is rolled back.
    code, _, err = run(capsys, policy_repo, history["initial"], "--branch", "side")
    assert code == 0, err
    assert tree_of(policy_repo, "side") == tree_of(policy_repo, history["initial"])
    assert policy_repo.git("rev-parse", "main") == policy_repo.git("rev-parse", "HEAD")


def test_a_revision_that_fails_policy_check_is_refused(
    policy_repo: PolicyRepo, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy_repo.write("routes.yaml", "routes:\n  broken:\n    targets: [nowhere/x]\n")
    broken = policy_repo.commit("route to nowhere")
    policy_repo.write("routes.yaml", "routes:\n  fixed:\n    targets: [fake/x]\n")
    policy_repo.commit("fix it")
    before = policy_repo.head()
    code, out, err = run(capsys, policy_repo, broken)
    assert code == 1
    assert "does not pass `policy check`" in err and "unknown provider 'nowhere'" in err
    assert "Nothing was committed" in err and "does not validate" in out
    assert policy_repo.head() == before


def test_a_commit_landing_meanwhile_refuses_the_rollback(
    policy_repo: PolicyRepo,
    history: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone commits between reading the head and moving the ref: nothing is written,
    and their commit stays (a blind write would undo it too)."""
    real: Callable[..., Any] = check_files
    theirs: list[str] = []

    def check_then_someone_commits(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        policy_repo.write("routes.yaml", "routes:\n  theirs:\n    targets: [fake/x]\n")
        theirs.append(policy_repo.commit("a concurrent commit"))
        return found

    monkeypatch.setattr(rollback, "check_files", check_then_someone_commits)
    code, _, err = run(capsys, policy_repo, history["initial"])
    assert code == 1, err
    assert f"moved to {theirs[0][:12]} while rolling back" in err
    assert "nothing was written" in err and "Run the rollback again" in err
    assert policy_repo.head() == theirs[0]
    assert "Roll back" not in policy_repo.git("log", "--all", "--format=%s")

    monkeypatch.undo()  # run again: it plans from their commit and undoes it too, by name
    code, _, err = run(capsys, policy_repo, history["initial"])
    assert code == 0, err
    assert f"undoes {theirs[0][:7]}" in policy_repo.git("log", "-1", "--format=%s")


def test_dry_run_and_push(
    policy_repo: PolicyRepo,
    history: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(policy_repo.path), str(origin)], check=True)
    policy_repo.git("remote", "add", "origin", str(origin))
    code, out, err = run(capsys, policy_repo, "HEAD~1", "--dry-run")
    assert code == 0 and "Dry run" in err and "Revoked** key `carol`" in out
    assert policy_repo.head() == history["carol"]
    code, _, err = run(capsys, policy_repo, "HEAD~1", "--push", "--author", "Pat <pat@example.com>")
    assert code == 0, err
    assert "Pushed refs/heads/main to origin" in err
    pushed = subprocess.run(
        ["git", "rev-parse", "main"], cwd=origin, capture_output=True, text=True, check=True
    )
    assert pushed.stdout.strip() == policy_repo.head()
    assert policy_repo.git("log", "-1", "--format=%an") == "Pat"


def test_a_rotated_key_getting_its_old_secret_back_is_said(
    policy_repo: PolicyRepo, history: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    keys = (policy_repo.path / "keys.yaml").read_text()
    line = next(x for x in keys.splitlines() if "hash:" in x and "sha256" in x)
    policy_repo.write("keys.yaml", keys.replace(line, f"    hash: {hash_of(new_secret())}"))
    policy_repo.commit("rotate alice")
    code, out, err = run(capsys, policy_repo, "HEAD~1")
    assert code == 0, err
    assert "Key `alice` goes back to the secret it had" in out
    assert "older secret works again" in policy_repo.git("log", "-1", "--format=%B")


def test_rolling_back_a_rejected_commit_restores_synced(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gateway refused the head; rolling back to the commit it serves brings `synced`."""
    d = deployment
    admin = d.keys["admin"]
    good = d.repo.head()
    d.repo.write("routes.yaml", "routes:\n  broken:\n    targets: [nowhere/model]\n")
    bad = d.repo.commit("route to a provider that does not exist")
    eventually(lambda: policy_status(d.gateway.url, admin)["state"] == "rejected")
    assert policy_status(d.gateway.url, admin)["rejected_commit"] == bad

    code, out, err = run(capsys, d.repo, good)
    assert code == 0, err
    assert "does not validate" in out  # the plan says what it replaces
    fixed = d.repo.head()
    eventually(lambda: policy_status(d.gateway.url, admin)["state"] == "synced")
    status = policy_status(d.gateway.url, admin)
    assert status["commit"] == fixed and status["rejected_commit"] is None
    assert status["error"] is None
    assert d.repo.git("log", "-1", "--format=%s") == f"Roll back to {good[:7]} (undoes {bad[:7]})"
