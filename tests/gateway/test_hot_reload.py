"""Policy changes by plain `git commit`, applied within a second; broken commits refused."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import Deployment
from tests.support.policy_repo import hash_of, new_secret

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat(d: Deployment, secret: str) -> httpx.Response:
    return httpx.post(
        d.gateway.url + "/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {secret}"},
    )


def status(d: Deployment) -> dict[str, object]:
    response = httpx.get(
        d.gateway.url + "/admin/api/status", headers={"authorization": f"Bearer {d.keys['admin']}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["policy"]  # type: ignore[no-any-return]


def eventually(check: Callable[[], bool], within_s: float = 1.0) -> float:
    """Seconds until `check` held; fails if it did not within the limit."""
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"not true within {within_s} s")


def add_key(d: Deployment, key_id: str, secret: str, extra: str = "") -> None:
    text = (d.repo.path / "keys.yaml").read_text()
    entry = f"  - id: {key_id}\n    hash: {hash_of(secret)}\n{extra}"
    d.repo.write("keys.yaml", text.replace("admins:", entry + "admins:"))


def test_new_key_is_served_within_a_second_of_its_commit(deployment: Deployment) -> None:
    secret = new_secret()
    assert chat(deployment, secret).status_code == 401
    add_key(deployment, "carol", secret)
    head = deployment.repo.commit("add carol")
    eventually(lambda: chat(deployment, secret).status_code == 200)
    assert chat(deployment, secret).headers["x-modelgate-policy"] == head
    assert status(deployment)["commit"] == head


def test_disabled_key_is_refused_after_commit(deployment: Deployment) -> None:
    text = (deployment.repo.path / "keys.yaml").read_text()
    deployment.repo.write(
        "keys.yaml", text.replace("  - id: bob\n", "  - id: bob\n    disabled: true\n")
    )
    deployment.repo.commit("disable bob")
    eventually(lambda: chat(deployment, deployment.keys["bob"]).status_code == 401)
    assert "disabled" in chat(deployment, deployment.keys["bob"]).json()["error"]["message"]


def test_new_route_is_served_after_commit(deployment: Deployment) -> None:
    text = (deployment.repo.path / "routes.yaml").read_text()
    deployment.repo.write("routes.yaml", text + "  gpt-4.1:\n    targets: [fake/big]\n")
    deployment.repo.commit("add gpt-4.1")
    body = {**CHAT, "model": "gpt-4.1"}
    secret = deployment.keys["alice"]
    eventually(
        lambda: (
            httpx.post(
                deployment.gateway.url + "/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {secret}"},
            ).status_code
            == 200
        )
    )
    assert deployment.upstream.requests[-1].body["model"] == "big"  # type: ignore[index]


def test_broken_commit_is_refused_then_a_fix_applies(deployment: Deployment) -> None:
    good = deployment.repo.head()
    text = (deployment.repo.path / "limits.yaml").read_text()
    deployment.repo.write("limits.yaml", text + "tiers:\n  gold: {rmp: 5}\n")
    bad = deployment.repo.commit("typo in limits")
    eventually(lambda: status(deployment)["state"] == "rejected")
    st = status(deployment)
    assert st["commit"] == good and st["rejected_commit"] == bad
    assert "limits.yaml:" in str(st["error"]) and "rmp" in str(st["error"])
    response = chat(deployment, deployment.keys["alice"])
    assert response.status_code == 200 and response.headers["x-modelgate-policy"] == good
    deployment.repo.write("limits.yaml", text)
    fixed = deployment.repo.commit("fix typo")
    eventually(lambda: status(deployment)["state"] == "synced")
    st = status(deployment)
    assert st["commit"] == fixed and st["error"] is None and st["rejected_commit"] is None


def test_uncommitted_edits_are_never_applied(deployment: Deployment) -> None:
    secret = new_secret()
    add_key(deployment, "dave", secret)  # written, not committed
    time.sleep(0.5)
    assert chat(deployment, secret).status_code == 401
    assert status(deployment)["commit"] == deployment.repo.head()
