"""`POST /admin/api/sync` against a real gateway: a captured push webhook cannot be replayed,
a signed timestamp must be fresh, and syncs are rate-limited."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from gateway.admin.sync_guard import SYNC_BURST, SYNC_EVERY_S, DeliveryMemory, TokenBucket
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy

SECRET = "webhook-replay-secret-0123456789"


def sign(body: bytes, timestamp: str | None = None) -> str:
    message = body if timestamp is None else timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def push_body() -> bytes:
    """A push payload no earlier delivery had (each push names new commits)."""
    return b'{"ref": "refs/heads/main", "after": "%s"}' % uuid.uuid4().hex.encode()


@pytest.fixture
def gateway(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> tuple[str, dict[str, str]]:
    keys = standard_policy(policy_repo, fake_upstream.url)
    served = start_gateway(
        policy_repo, "--webhook-secret", "env:MG_TEST_WEBHOOK", env={"MG_TEST_WEBHOOK": SECRET}
    )
    return served.url + "/admin/api/sync", keys


def post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def test_a_replayed_github_delivery_is_refused(gateway: tuple[str, dict[str, str]]) -> None:
    url, _ = gateway
    body, delivery = push_body(), str(uuid.uuid4())
    signed = {"x_hub_signature_256": sign(body), "x_github_delivery": delivery}
    assert post(url, body, **signed).status_code == 200

    replay = post(url, body, **signed)
    assert replay.status_code == 409
    assert "already received" in replay.json()["error"]["message"]
    # The delivery id is not signed: an attacker who changes or drops it is still caught.
    fresh_id = {**signed, "x_github_delivery": str(uuid.uuid4())}
    assert post(url, body, **fresh_id).status_code == 409
    assert post(url, body, x_hub_signature_256=sign(body)).status_code == 409
    # A new push under an id already seen is a redelivery of that id: refused too.
    other = push_body()
    reused_id = {"x_hub_signature_256": sign(other), "x_github_delivery": delivery}
    assert post(url, other, **reused_id).status_code == 409
    assert post(url, other, x_hub_signature_256=sign(other)).status_code == 200


def test_a_replayed_gitlab_delivery_is_refused(gateway: tuple[str, dict[str, str]]) -> None:
    url, _ = gateway
    body = push_body()
    headers = {"x_gitlab_token": SECRET, "x_gitlab_event_uuid": str(uuid.uuid4())}
    assert post(url, body, **headers).status_code == 200
    assert post(url, body, **headers).status_code == 409
    assert post(url, body, x_gitlab_token=SECRET).status_code == 409


def test_a_signed_timestamp_must_be_fresh(gateway: tuple[str, dict[str, str]]) -> None:
    url, _ = gateway
    body = push_body()
    now = str(int(time.time()))
    fresh = {"x_modelgate_timestamp": now, "x_hub_signature_256": sign(body, now)}
    assert post(url, body, **fresh).status_code == 200
    assert post(url, body, **fresh).status_code == 409

    for offset in (-600, 600):
        stamp = str(int(time.time()) + offset)
        stale = post(url, body, x_modelgate_timestamp=stamp, x_hub_signature_256=sign(body, stamp))
        assert stale.status_code == 400, stale.text
        assert "refused as a replay" in stale.json()["error"]["message"]
    garbage = post(url, body, x_modelgate_timestamp="yesterday", x_hub_signature_256=sign(body))
    assert garbage.status_code == 400
    # The timestamp is signed with the body: a fresh one on an old signature does not match.
    other = push_body()
    unsigned = post(url, other, x_modelgate_timestamp=now, x_hub_signature_256=sign(other))
    assert unsigned.status_code == 401
    assert "<x-modelgate-timestamp>.<body>" in unsigned.json()["error"]["message"]


def test_syncs_are_rate_limited(gateway: tuple[str, dict[str, str]]) -> None:
    url, keys = gateway
    admin = {"authorization": f"Bearer {keys['admin']}"}
    answers = [httpx.post(url, headers=admin) for _ in range(SYNC_BURST + 1)]
    assert [a.status_code for a in answers[:SYNC_BURST]] == [200] * SYNC_BURST
    limited = answers[-1]
    assert limited.status_code == 429
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= SYNC_EVERY_S + 1
    assert "--sync-interval" in limited.json()["error"]["message"]
    # A webhook draws from the same bucket, and a refused one is not remembered as received.
    body = push_body()
    assert post(url, body, x_hub_signature_256=sign(body)).status_code == 429
    time.sleep(wait)
    assert post(url, body, x_hub_signature_256=sign(body)).status_code == 200


# The parts on their own -----------------------------------------------------------------


def test_the_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(burst=2, every_s=3, clock=lambda: now[0])
    assert [bucket.take(), bucket.take()] == [0, 0]
    assert bucket.take() == 3
    now[0] = 2.0
    assert bucket.take() == 1
    now[0] = 3.0
    assert bucket.take() == 0
    now[0] = 100.0  # never more than the burst
    assert [bucket.take(), bucket.take(), bucket.take()] == [0, 0, 3]


def test_the_memory_is_bounded_and_forgets_on_request() -> None:
    memory = DeliveryMemory(capacity=3)
    memory.remember(["a", "b"])
    memory.remember(["c", "d"])  # "a" is pushed out
    assert not memory.seen(["a"]) and memory.seen(["x", "b"])
    memory.forget(["c", "d"])
    assert not memory.seen(["c"]) and not memory.seen(["d"])
