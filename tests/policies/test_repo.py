"""Reading committed policy files through dulwich, from repositories made by `git`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from policies.problems import PolicyRepoError
from policies.repo import open_repo, read_policy_files, ref_sha, resolve
from tests.support.policy_repo import PolicyRepo

ROUTES = "routes:\n  m: {targets: [p/m]}\n"


@pytest.fixture
def repo(tmp_path: Path) -> PolicyRepo:
    made = PolicyRepo(tmp_path / "policy")
    made.write("routes.yaml", ROUTES)
    made.commit("first")
    return made


def test_resolve_accepts_refs_branches_head_and_shas(repo: PolicyRepo) -> None:
    head = repo.head()
    repo.git("tag", "-a", "v1", "-m", "annotated tag")
    with open_repo(repo.path) as opened:
        for rev in ("main", "refs/heads/main", "HEAD", head, head[:8], "v1", "refs/tags/v1"):
            assert resolve(opened, rev) == head, rev
        for rev in ("nope", "refs/heads/nope", "0" * 40, "", "deadbeef"):
            assert resolve(opened, rev) is None, rev


def test_reads_root_and_keys_dir_yaml_from_the_commit_only(repo: PolicyRepo) -> None:
    repo.write("limits.yml", "default: {rpm: 1}\n")
    repo.write("keys/team-a.yaml", "keys: []\n")
    repo.write("keys/notes.txt", "not policy\n")
    repo.write("keys/deeper/x.yaml", "keys: []\n")
    repo.write("docs/example.yaml", "a: 1\n")
    repo.write("README.md", "# policy\n")
    head = repo.commit("more files")
    # Edits after the commit, staged or not, must never be read.
    repo.write("routes.yaml", "routes: {}\n")
    repo.write("keys/uncommitted.yaml", "keys: []\n")
    repo.git("add", "keys/uncommitted.yaml")
    with open_repo(repo.path) as opened:
        files = read_policy_files(opened, head)
    assert files == {
        "routes.yaml": ROUTES.encode(),
        "limits.yml": b"default: {rpm: 1}\n",
        "keys/team-a.yaml": b"keys: []\n",
    }


def test_symlinks_are_not_read_as_policy(repo: PolicyRepo) -> None:
    (repo.path / "limits.yaml").symlink_to("/etc/hostname")
    head = repo.commit("a symlink")
    with open_repo(repo.path) as opened:
        assert set(read_policy_files(opened, head)) == {"routes.yaml"}


def test_bare_repository_works(repo: PolicyRepo, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    head = repo.head()
    assert ref_sha(bare, "refs/heads/main") == head
    with open_repo(bare) as opened:
        assert resolve(opened, "main") == head
        assert read_policy_files(opened, head) == {"routes.yaml": ROUTES.encode()}


def test_ref_sha_follows_commits_packing_and_gc(repo: PolicyRepo) -> None:
    first = repo.head()
    assert ref_sha(repo.path, "refs/heads/main") == first
    assert ref_sha(repo.path, "HEAD") == first
    assert ref_sha(repo.path, "main") == first
    repo.write("limits.yaml", "default: {rpm: 5}\n")
    second = repo.commit("second")
    assert ref_sha(repo.path, "refs/heads/main") == second
    repo.git("gc", "-q", "--prune=now")  # refs packed, loose ref file gone, objects packed
    assert not (repo.path / ".git" / "refs" / "heads" / "main").exists()
    assert ref_sha(repo.path, "refs/heads/main") == second
    repo.write("limits.yaml", "default: {rpm: 6}\n")
    third = repo.commit("third")
    assert ref_sha(repo.path, "refs/heads/main") == third
    repo.git("reset", "-q", "--hard", first)
    assert ref_sha(repo.path, "refs/heads/main") == first
    with open_repo(repo.path) as opened:
        assert read_policy_files(opened, second)["limits.yaml"] == b"default: {rpm: 5}\n"


def test_missing_refs_and_repositories(repo: PolicyRepo, tmp_path: Path) -> None:
    assert ref_sha(repo.path, "refs/heads/other") is None
    assert ref_sha(tmp_path / "nowhere", "refs/heads/main") is None
    (tmp_path / "plain").mkdir()
    assert ref_sha(tmp_path / "plain", "refs/heads/main") is None
    with pytest.raises(PolicyRepoError, match="modelgate init"):
        open_repo(tmp_path / "plain")


def test_ref_sha_peels_tags_and_reads_linked_worktrees(repo: PolicyRepo, tmp_path: Path) -> None:
    head = repo.head()
    repo.git("tag", "-a", "v1", "-m", "annotated tag")
    assert ref_sha(repo.path, "refs/tags/v1") == head
    assert ref_sha(repo.path, "v1") == head
    linked = tmp_path / "linked"
    repo.git("worktree", "add", "-q", "-b", "side", str(linked))
    assert (linked / ".git").is_file()
    assert ref_sha(linked, "refs/heads/main") == head
    assert ref_sha(linked, "HEAD") == head  # the worktree's own HEAD: branch side
