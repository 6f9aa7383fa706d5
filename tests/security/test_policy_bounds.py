"""Hostile policy commits are refused quickly, by name, while the last good commit serves.

Each commit is made with `git` and picked up by the real server's watcher, as a push would be.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Deployment
from tests.support.policy_repo import PolicyRepo

REFUSED_WITHIN_S = 5.0
"""Commit to refusal, watcher poll included; before the bounds, these took 35 s or were served."""


def a_50_mb_keys_file(repo: PolicyRepo) -> str:
    repo.write("keys/huge.yaml", "keys: []\n# " + "x" * 50_000_000 + "\n")
    return "keys/huge.yaml:1:1: 50,000,012 bytes: a policy file holds at most 8 MiB"


def a_100k_files_commit(repo: PolicyRepo) -> str:
    """100,000 key files, written straight into git's index (one blob, many names)."""
    blob = git_with_input(repo, "keys: []\n", "hash-object", "-w", "--stdin").strip()
    index = "".join(f"100644 {blob}\tkeys/k{i}.yaml\n" for i in range(100_000))
    git_with_input(repo, index, "update-index", "--index-info")
    return "keys/:1:1: 100,004 policy files: a policy holds at most 1,000"


def nesting_100k_deep(repo: PolicyRepo) -> str:
    repo.write("routes.yaml", "routes: " + "[" * 100_000 + "]" * 100_000 + "\n")
    return "routes.yaml:1:40: nested more than 32 levels deep"


def a_billion_laughs(repo: PolicyRepo) -> str:
    lines = ['  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    repo.write("keys/laughs.yaml", "keys:\n" + "\n".join(lines) + "\n")
    return "keys/laughs.yaml:1:1: YAML syntax error: alias replay limit exceeded"


@pytest.mark.parametrize(
    "hostile", [a_50_mb_keys_file, a_100k_files_commit, nesting_100k_deep, a_billion_laughs]
)
def test_a_hostile_commit_is_refused_quickly_and_the_last_good_one_serves(
    deployment: Deployment, hostile: Callable[[PolicyRepo], str]
) -> None:
    good = deployment.repo.head()
    expected = hostile(deployment.repo)
    if hostile is a_100k_files_commit:
        deployment.repo.git("commit", "-q", "-m", "hostile")
        bad = deployment.repo.head()
    else:
        bad = deployment.repo.commit("hostile")
    started = time.monotonic()
    while (policy := status(deployment))["rejected_commit"] != bad:
        assert policy["commit"] == good, "the hostile commit was applied"
        assert time.monotonic() - started < REFUSED_WITHIN_S, "not refused in time"
        time.sleep(0.05)
    assert str(policy["error"]).startswith(expected)
    answer = httpx.post(
        deployment.gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {deployment.keys['alice']}"},
    )
    assert answer.status_code == 200 and answer.headers["x-modelgate-policy"] == good


def git_with_input(repo: PolicyRepo, text: str, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo.path, input=text, capture_output=True, text=True, check=True
    )
    return done.stdout


def status(d: Deployment) -> dict[str, object]:
    response = httpx.get(
        d.gateway.url + "/admin/api/status", headers={"authorization": f"Bearer {d.keys['admin']}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["policy"]  # type: ignore[no-any-return]
