"""`modelgate serve --remote`: clone, sync, forced updates, two gateways, sync endpoint, webhook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Deployment
from tests.gitops.support import GitHttpServer, Origin, policy_status, sign
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import hash_of, new_secret, standard_policy
from tests.support.waiting import eventually

WEBHOOK_SECRET = "webhook-test-secret-0123456789"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def origin(tmp_path: Path, fake_upstream: FakeUpstream) -> tuple[Origin, dict[str, str]]:
    origin = Origin(tmp_path / "host")
    keys = standard_policy(origin.work, fake_upstream.url)
    origin.push()
    return origin, keys


@pytest.fixture
def start_remote_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(url: str, *args: str) -> GatewayProcess:
        n = len(started)
        gateway = GatewayProcess(
            tmp_path / f"clone-{n}",  # missing: serve clones the remote there
            tmp_path / f"state-{n}",
            "--remote",
            url,
            *args,
            env={"MG_TEST_WEBHOOK": WEBHOOK_SECRET},
        )
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


def add_key(origin: Origin, key_id: str) -> str:
    secret = new_secret()
    text = (origin.work.path / "keys.yaml").read_text()
    entry = f"  - id: {key_id}\n    hash: {hash_of(secret)}\n"
    origin.work.write("keys.yaml", text.replace("admins:", entry + "admins:"))
    return secret


def chat(gateway: GatewayProcess, secret: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"}
    return httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=headers)


@pytest.mark.parametrize("transport", ["file", "http"])
def test_serve_clones_the_remote_and_applies_what_arrives(
    origin: tuple[Origin, dict[str, str]],
    start_remote_gateway: Callable[..., GatewayProcess],
    transport: str,
) -> None:
    repo, keys = origin
    with GitHttpServer(repo.bare) as server:
        url = repo.url if transport == "file" else server.url
        gateway = start_remote_gateway(url, "--sync-interval", "0.2")
        assert policy_status(gateway.url, keys["admin"])["commit"] == repo.head()
        secret = add_key(repo, "carol")
        head = repo.commit_and_push("add carol")
        eventually(lambda: chat(gateway, secret).status_code == 200)
        status = policy_status(gateway.url, keys["admin"])
        assert status["commit"] == head and status["state"] == "synced"
        remote = status["remote"]
        assert isinstance(remote, dict)
        assert remote["fetched_commit"] == head and remote["error"] is None
        assert remote["ref"] == "refs/heads/main"


def test_force_push_is_followed_and_recorded(
    origin: tuple[Origin, dict[str, str]], start_remote_gateway: Callable[..., GatewayProcess]
) -> None:
    repo, keys = origin
    gateway = start_remote_gateway(repo.url, "--sync-interval", "0.2")
    secret = add_key(repo, "dave")
    first = repo.commit_and_push("add dave")
    eventually(lambda: policy_status(gateway.url, keys["admin"])["commit"] == first)
    # The remote drops dave again by rewriting history.
    repo.work.git("reset", "-q", "--hard", "HEAD~1")
    repo.work.write(
        "routes.yaml",
        (repo.work.path / "routes.yaml").read_text() + "  x:\n    targets: [fake/x]\n",
    )
    rewritten = repo.work.commit("rewritten without dave")
    repo.push(force=True)
    eventually(lambda: policy_status(gateway.url, keys["admin"])["commit"] == rewritten)
    assert chat(gateway, secret).status_code == 401
    status = policy_status(gateway.url, keys["admin"])
    attempts = status["attempts"]
    assert isinstance(attempts, list) and attempts[0]["commit"] == rewritten
    assert attempts[0]["forced"] is True
    assert "forced update" in str(status["message"])
    remote = status["remote"]
    assert isinstance(remote, dict) and remote["forced"] is True


def test_two_gateways_on_one_remote_converge(
    origin: tuple[Origin, dict[str, str]], start_remote_gateway: Callable[..., GatewayProcess]
) -> None:
    repo, keys = origin
    gateways = [start_remote_gateway(repo.url, "--sync-interval", "0.2") for _ in range(2)]
    for n in range(3):
        add_key(repo, f"k{n}")
        head = repo.commit_and_push(f"k{n}")
    for gateway in gateways:
        eventually(lambda gw=gateway: policy_status(gw.url, keys["admin"])["commit"] == head)
    repo.rewrite_last("k2 reworded")
    final = repo.head()
    for gateway in gateways:
        eventually(lambda gw=gateway: policy_status(gw.url, keys["admin"])["commit"] == final)


def test_sync_endpoint_and_push_webhook(
    origin: tuple[Origin, dict[str, str]], start_remote_gateway: Callable[..., GatewayProcess]
) -> None:
    repo, keys = origin
    # A sync interval of an hour: only the endpoint makes the gateway fetch.
    gateway = start_remote_gateway(
        repo.url, "--sync-interval", "3600", "--webhook-secret", "env:MG_TEST_WEBHOOK"
    )
    sync_url = gateway.url + "/admin/api/sync"
    start = repo.head()
    add_key(repo, "erin")
    head = repo.commit_and_push("add erin")

    assert httpx.post(sync_url).status_code == 401
    assert (
        httpx.post(sync_url, headers={"authorization": f"Bearer {keys['bob']}"}).status_code == 403
    )
    body = b'{"ref": "refs/heads/main"}'
    bad = httpx.post(sync_url, content=body, headers={"x-hub-signature-256": sign("wrong", body)})
    assert bad.status_code == 401 and "signature" in bad.json()["error"]["message"]
    unsigned_prefix = {"x-hub-signature-256": sign(WEBHOOK_SECRET, body)[len("sha256=") :]}
    assert httpx.post(sync_url, content=body, headers=unsigned_prefix).status_code == 401
    status = policy_status(gateway.url, keys["admin"])
    assert status["commit"] == start  # a refused webhook fetched nothing
    remote = status["remote"]
    assert isinstance(remote, dict)
    fetches_before = len(remote["fetches"])  # type: ignore[arg-type]

    good = httpx.post(
        sync_url, content=body, headers={"x-hub-signature-256": sign(WEBHOOK_SECRET, body)}
    )
    assert good.status_code == 200, good.text
    assert good.json()["policy"]["commit"] == head and good.json()["changed"] is True
    remote = policy_status(gateway.url, keys["admin"])["remote"]
    assert isinstance(remote, dict) and len(remote["fetches"]) == fetches_before + 1  # type: ignore[arg-type]

    add_key(repo, "frank")
    newer = repo.commit_and_push("add frank")
    by_admin = httpx.post(sync_url, headers={"authorization": f"Bearer {keys['admin']}"})
    assert by_admin.status_code == 200 and by_admin.json()["policy"]["commit"] == newer

    # GitLab's push webhook sends the secret itself as X-Gitlab-Token.
    add_key(repo, "grace")
    newest = repo.commit_and_push("add grace")
    wrong = httpx.post(sync_url, content=body, headers={"x-gitlab-token": "not-the-secret"})
    assert wrong.status_code == 401 and "X-Gitlab-Token" in wrong.json()["error"]["message"]
    assert WEBHOOK_SECRET not in wrong.text
    assert policy_status(gateway.url, keys["admin"])["commit"] == newer
    gitlab = httpx.post(sync_url, content=body, headers={"x-gitlab-token": WEBHOOK_SECRET})
    assert gitlab.status_code == 200 and gitlab.json()["policy"]["commit"] == newest


def test_unreachable_remote_keeps_serving_and_says_so(
    origin: tuple[Origin, dict[str, str]], start_remote_gateway: Callable[..., GatewayProcess]
) -> None:
    repo, keys = origin
    gateway = start_remote_gateway(repo.url, "--sync-interval", "3600")
    repo.bare.rename(repo.bare.with_name("moved.git"))
    response = httpx.post(
        gateway.url + "/admin/api/sync", headers={"authorization": f"Bearer {keys['admin']}"}
    )
    assert response.status_code == 502
    policy = response.json()["policy"]
    assert policy["state"] == "synced" and policy["commit"] == repo.head()
    assert "could not fetch" in policy["remote"]["error"] and "remote:" in policy["message"]
    assert chat(gateway, keys["alice"]).status_code == 200


def test_sync_endpoint_without_a_remote_rereads_the_local_ref(deployment: Deployment) -> None:
    admin = {"authorization": f"Bearer {deployment.keys['admin']}"}
    url = deployment.gateway.url + "/admin/api/sync"
    response = httpx.post(url, headers=admin)
    assert response.status_code == 200
    assert response.json()["changed"] is False
    assert response.json()["policy"]["remote"] is None
    secret = new_secret()
    text = (deployment.repo.path / "keys.yaml").read_text()
    entry = f"  - id: gina\n    hash: {hash_of(secret)}\n"
    deployment.repo.write("keys.yaml", text.replace("admins:", entry + "admins:"))
    head = deployment.repo.commit("add gina")
    response = httpx.post(url, headers=admin)
    policy = response.json()["policy"]
    assert policy["commit"] == head  # applied by the time the answer comes
    assert chat(deployment.gateway, secret).status_code == 200
