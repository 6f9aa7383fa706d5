"""A commit on the policy ref is applied by the next poll (here: `reload()`, no waiting);
a commit that does not validate is refused and the last good policy keeps serving."""

from __future__ import annotations

from tests.inprocess.calls import bearer, chat
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.policy import ROUTES
from tests.support.policy_repo import PolicyRepo


async def _status(gateway: InProcessGateway, admin: str) -> dict[str, object]:
    answer = await gateway.client.get("/admin/api/status", headers=bearer(admin))
    assert answer.status_code == 200
    policy: dict[str, object] = answer.json()["policy"]
    return policy


async def test_a_new_commit_is_applied_and_served(
    gateway: InProcessGateway, secrets: dict[str, str], repo: PolicyRepo
) -> None:
    alice = secrets["alice"]
    assert (await chat(gateway, alice, "gpt-new")).status_code == 404
    repo.write("routes.yaml", ROUTES + "  gpt-new:\n    targets: [backup/upstream-new]\n")
    commit = repo.commit("add gpt-new")
    assert (await chat(gateway, alice, "gpt-new")).status_code == 404  # not polled yet
    assert await gateway.reload()
    answer = await chat(gateway, alice, "gpt-new")
    assert answer.status_code == 200, answer.text
    assert gateway.upstream.seen[-1].body == {
        "model": "upstream-new",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert answer.headers["x-modelgate-policy"] == commit
    assert (await _status(gateway, secrets["admin"]))["commit"] == commit


async def test_an_invalid_commit_is_refused_and_the_last_good_one_serves(
    gateway: InProcessGateway, secrets: dict[str, str], repo: PolicyRepo
) -> None:
    applied = repo.head()
    repo.write("routes.yaml", "routes:\n  gpt-broken:\n    targets: [nowhere/model]\n")
    rejected = repo.commit("route to a provider that does not exist")
    assert await gateway.reload()
    assert not await gateway.reload()  # refused once, not parsed again every poll
    status = await _status(gateway, secrets["admin"])
    assert (status["state"], status["commit"], status["rejected_commit"]) == (
        "rejected",
        applied,
        rejected,
    )
    assert "routes.yaml" in str(status["error"])
    assert (await chat(gateway, secrets["alice"])).status_code == 200


async def test_a_key_removed_by_commit_is_refused_after_the_reload(
    gateway: InProcessGateway, secrets: dict[str, str], repo: PolicyRepo
) -> None:
    limited = secrets["limited"]
    assert (await chat(gateway, limited)).status_code == 200
    keys = (repo.path / "keys.yaml").read_text()
    start = keys.index("  - id: limited")
    end = keys.index("admins:")
    (repo.path / "keys.yaml").write_text(keys[:start] + keys[end:])
    repo.commit("revoke limited")
    assert await gateway.reload()
    assert (await chat(gateway, limited)).status_code == 401
    assert (await chat(gateway, secrets["alice"])).status_code == 200
