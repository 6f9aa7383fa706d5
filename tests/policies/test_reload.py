"""The watcher: new commits applied within a poll, broken ones refused, the last good kept."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest

import policies.reload as reload
from credentials.refs import AllowedRefs
from policies.reload import Attempt, PolicyHolder, PolicyWatcher
from policies.snapshot import Snapshot
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

ROUTES = "routes:\n  m: {targets: [p/m]}\n"
PROVIDERS = "providers:\n  p: {type: openai, base_url: http://127.0.0.1:9/v1}\n"
LIMITS = "default: {rpm: 60}\n"


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    made = PolicyRepo(tmp_path / "policy")
    made.write("routes.yaml", ROUTES)
    made.write("providers.yaml", PROVIDERS)
    made.write("limits.yaml", LIMITS)
    made.commit("first")
    return made


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commits the watcher loaded and compiled, in order."""
    seen: list[str] = []
    real = reload.build_snapshot

    def counting(repo_path: Path, commit: str, allowed: AllowedRefs) -> Snapshot:
        seen.append(commit)
        return real(repo_path, commit, allowed)

    monkeypatch.setattr(reload, "build_snapshot", counting)
    return seen


def served(holder: PolicyHolder) -> str:
    assert holder.snapshot is not None
    return holder.snapshot.commit


def test_holder_starts_pending() -> None:
    status = PolicyHolder().status_dict()
    assert status == {
        "commit": None,
        "applied_at": None,
        "state": "pending",
        "error": None,
        "rejected_commit": None,
        "attempted_commit": None,
        "message": "waiting for a valid policy commit",
        "attempts": [],
        "remote": None,
    }


def test_load_initial_applies_the_ref(repo: PolicyRepo) -> None:
    holder = PolicyHolder()
    assert PolicyWatcher(holder, repo.path, "refs/heads/main").load_initial()
    assert served(holder) == holder.applied_commit == repo.head()
    status = holder.status_dict()
    assert status["state"] == "synced" and status["commit"] == repo.head()
    assert isinstance(status["applied_at"], str) and status["applied_at"].endswith("Z")
    assert status["attempts"] == [
        {
            "commit": repo.head(),
            "at": status["applied_at"],
            "ok": True,
            "error": None,
            "forced": False,
        }
    ]


async def test_new_commit_applies_and_an_unmoved_ref_does_nothing(
    repo: PolicyRepo, builds: list[str]
) -> None:
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main")
    assert await watcher.check_now() is True
    assert await watcher.check_now() is False
    secret = new_secret()
    repo.write("keys.yaml", f"keys:\n  - id: carol\n    hash: {hash_of(secret)}\n")
    second = repo.commit("add carol")
    assert await watcher.check_now() is True
    assert served(holder) == second and holder.state == "synced"
    assert holder.snapshot is not None
    principal = holder.snapshot.principal(hash_of(secret).removeprefix("sha256:"))
    assert principal is not None and principal.key_id == "carol"
    assert builds == [builds[0], second]


async def test_broken_commit_is_refused_once_and_the_fix_applies(
    repo: PolicyRepo, builds: list[str]
) -> None:
    holder = PolicyHolder()
    attempts: list[Attempt] = []
    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main", on_attempt=attempts.append)
    await watcher.check_now()
    good = repo.head()
    old_snapshot = holder.snapshot

    repo.write("limits.yaml", "default: {rmp: 60}\n")
    bad = repo.commit("typo")
    assert await watcher.check_now() is True
    assert holder.snapshot is old_snapshot and served(holder) == good
    status = holder.status_dict()
    assert status["state"] == "rejected"
    assert status["commit"] == good and status["rejected_commit"] == bad
    assert status["attempted_commit"] == bad
    assert str(status["error"]).startswith("limits.yaml:1:11: unknown field 'rmp'")
    assert [a.ok for a in attempts] == [True, False]

    # The same bad commit is not parsed again on every poll.
    for _ in range(3):
        assert await watcher.check_now() is False
    assert builds.count(bad) == 1

    repo.write("limits.yaml", LIMITS)
    fixed = repo.commit("fix")
    assert await watcher.check_now() is True
    status = holder.status_dict()
    assert status["state"] == "synced" and status["commit"] == fixed == served(holder)
    assert status["error"] is None and status["rejected_commit"] is None
    assert [a["ok"] for a in status["attempts"]] == [True, False, True]  # type: ignore[index]


async def test_reverting_to_the_applied_commit_clears_the_rejection(repo: PolicyRepo) -> None:
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main")
    await watcher.check_now()
    good = repo.head()
    repo.write("routes.yaml", "routes:\n  m: {targets: [nowhere/m]}\n")
    repo.commit("unknown provider")
    await watcher.check_now()
    assert holder.state == "rejected" and "unknown provider 'nowhere'" in str(holder.error)
    repo.git("reset", "-q", "--hard", good)
    assert await watcher.check_now() is True
    assert holder.state == "synced" and holder.error is None and served(holder) == good


async def test_poll_loop_applies_a_commit_within_one_poll(repo: PolicyRepo) -> None:
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main", poll_interval=0.2)
    watcher.load_initial()
    task = asyncio.create_task(watcher.run())
    try:
        repo.write("limits.yaml", "default: {rpm: 61}\n")
        head = repo.commit("raise rpm")
        committed = time.monotonic()
        while holder.applied_commit != head:
            assert time.monotonic() - committed < 0.2 + 0.5, "not applied within one poll"
            await asyncio.sleep(0.01)
        assert holder.snapshot is not None
        assert holder.snapshot.policy.limits.default.rpm == 61
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_bare_repository_receiving_pushes(repo: PolicyRepo, tmp_path: Path) -> None:
    bare = tmp_path / "served.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, bare, "refs/heads/main")
    assert watcher.load_initial() and served(holder) == repo.head()
    repo.write("limits.yaml", "default: {rpm: 7}\n")
    head = repo.commit("rpm 7")
    repo.git("push", "-q", str(bare), "main")
    assert await watcher.check_now() is True and served(holder) == head


async def test_missing_ref_is_reported_until_a_commit_arrives(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "empty")  # `git init` only: refs/heads/main does not exist
    holder = PolicyHolder()
    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main")
    assert watcher.load_initial() is False
    assert holder.state == "pending" and "refs/heads/main not found" in str(holder.error)
    assert await watcher.check_now() is False  # nothing new to say
    repo.write("routes.yaml", "routes: {}\n")
    head = repo.commit("first policy")
    assert await watcher.check_now() is True
    assert holder.state == "synced" and holder.error is None and served(holder) == head


async def test_fetch_hook_runs_before_the_ref_is_read(repo: PolicyRepo) -> None:
    holder = PolicyHolder()
    arrived: list[str] = []

    async def fetch() -> None:  # stands in for a remote: a commit "arrives"
        repo.write("limits.yaml", f"default: {{rpm: {10 + len(arrived)}}}\n")
        arrived.append(repo.commit("from the remote"))

    watcher = PolicyWatcher(holder, repo.path, "refs/heads/main", fetch=fetch, fetch_interval=60)
    assert await watcher.check_now() is True  # first check: a fetch is due
    assert served(holder) == arrived[0]
    assert await watcher.check_now() is False and len(arrived) == 1  # not due again yet
    assert await watcher.check_now(fetch=True) is True and served(holder) == arrived[1]


def test_attempts_keep_the_last_twenty() -> None:
    holder = PolicyHolder()
    for n in range(25):
        holder.reject(f"{n:040x}", f"problem {n}", at=1_700_000_000 + n)
    attempts = holder.status_dict()["attempts"]
    assert isinstance(attempts, list) and len(attempts) == 20
    assert attempts[0]["error"] == "problem 24" and attempts[-1]["error"] == "problem 5"
    assert attempts[0]["at"] == "2023-11-14T22:13:44.000Z"


async def test_collector_is_enabled_again_after_good_and_bad_loads(repo: PolicyRepo) -> None:
    watcher = PolicyWatcher(PolicyHolder(), repo.path, "refs/heads/main")
    assert await watcher.check_now() is True and gc.isenabled()
    repo.write("routes.yaml", "routes: [broken\n")
    repo.commit("syntax error")
    assert await watcher.check_now() is True and gc.isenabled()
    assert watcher.holder.state == "rejected"
    assert str(watcher.holder.error).startswith("routes.yaml:1:9: YAML syntax error")
