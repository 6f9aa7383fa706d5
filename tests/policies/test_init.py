"""`modelgate init`: a loadable starter repository, made by dulwich alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from credentials.keys import hash_secret, looks_like_client_key, sha256_hex
from policies.init import STARTER_FILES, InitRefused, init_repo
from policies.loader import load_policy_at
from policies.repo import open_repo, read_policy_files
from policies.snapshot import Snapshot


def git(path: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_init_makes_a_loadable_repository_whose_secrets_match(tmp_path: Path) -> None:
    path = tmp_path / "var" / "policy"
    result = init_repo(path)
    assert looks_like_client_key(result.demo_key) and looks_like_client_key(result.admin_token)
    assert result.demo_key != result.admin_token

    sha, policy = load_policy_at(path, "refs/heads/main")
    assert sha == result.commit
    (demo,) = policy.keys
    (ops,) = policy.admins
    assert (demo.id, demo.tier, demo.hash) == ("demo", "standard", hash_secret(result.demo_key))
    assert (ops.id, ops.hash) == ("ops", hash_secret(result.admin_token))
    assert set(policy.providers) == {"openai", "local"}
    assert policy.providers["openai"].credentials == ("env:OPENAI_API_KEY",)
    assert policy.providers["local"].base_url == "http://127.0.0.1:11434/v1"
    assert policy.providers["local"].credentials == ()
    assert set(policy.routes) == {"gpt-4o-mini", "llama3.2"}
    assert policy.limits.default.rpm == 60 and set(policy.limits.tiers) == {"standard", "batch"}

    snapshot = Snapshot.compile(policy, sha)
    principal = snapshot.principal(sha256_hex(result.demo_key))
    assert principal is not None and principal.key_id == "demo" and principal.limits.rpm == 120
    assert snapshot.admin(sha256_hex(result.admin_token)) is not None


def test_secrets_are_nowhere_in_the_repository(tmp_path: Path) -> None:
    result = init_repo(tmp_path / "policy")
    with open_repo(tmp_path / "policy") as repo:
        committed = read_policy_files(repo, result.commit)
    assert set(committed) == set(STARTER_FILES)
    for data in committed.values():
        text = data.decode()
        assert result.demo_key not in text and result.admin_token not in text
        assert "\n#" in "\n" + text  # the starter files explain themselves


def test_git_sees_a_clean_main_branch_with_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "policy"
    result = init_repo(path)
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(path, "rev-parse", "HEAD") == result.commit
    assert (
        git(path, "log", "--format=%an <%ae>|%s")
        == "ModelGate <modelgate@localhost>|Initial policy"
    )
    assert git(path, "status", "--porcelain") == ""


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    made = tmp_path / "made"
    init_repo(made)
    with pytest.raises(InitRefused, match="already a git repository"):
        init_repo(made)
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    with pytest.raises(InitRefused, match="already a git repository"):
        init_repo(plain)
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(InitRefused, match="already a git repository"):
        init_repo(bare)
    files = tmp_path / "files"
    files.mkdir()
    (files / "routes.yaml").write_text("routes: {}\n")
    with pytest.raises(InitRefused, match=r"already has routes\.yaml"):
        init_repo(files)
    assert (files / "routes.yaml").read_text() == "routes: {}\n"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(InitRefused, match="not a directory"):
        init_repo(a_file)
