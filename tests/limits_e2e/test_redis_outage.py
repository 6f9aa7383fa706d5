"""Redis goes away and comes back, through the server, in both fail modes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.limits_e2e.calls import (
    CHAT_PATH,
    PER_REQUEST,
    assert_refused,
    chat,
    chat_body,
    key_usage,
    limits_status,
    wait_for,
)
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer

KEYS = {
    "rpm3": KeySpec(limits="{rpm: 3}"),
    "quota": KeySpec(limits="{tokens_per_day: 1000}"),
    "free": KeySpec(),
    "one": KeySpec(limits="{max_concurrency: 1}"),
}
LOST = "Redis unreachable"
BACK = "Redis reachable again"


def _start(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis: RedisServer,
    gateways: Callable[..., GatewayProcess],
    mode: str,
) -> tuple[LimitsPolicy, GatewayProcess]:
    policy = LimitsPolicy.create(tmp_path / "policy", upstream.url, KEYS)
    gateway = gateways(policy.repo, "--redis-url", redis.url, "--limits-fail-mode", mode)
    assert limits_status(gateway.url, policy.admin) == {
        "store": "redis",
        "state": "ok",
        "mode": mode,
        "error": None,
    }
    return policy, gateway


def _wait_state(gateway: GatewayProcess, admin: str, state: str) -> dict[str, object]:
    wait_for(lambda: limits_status(gateway.url, admin)["state"] == state, f"limits {state}")
    return limits_status(gateway.url, admin)


def _assert_rpm_applies(gateway: GatewayProcess, secret: str) -> None:
    for _ in range(3):
        assert chat(gateway.url, secret).status_code == 200
    assert_refused(chat(gateway.url, secret))


def _assert_logged_once(gateway: GatewayProcess) -> None:
    logs = gateway.logs()
    assert logs.count(LOST) == 1, logs
    assert logs.count(BACK) == 1, logs
    assert "redis://" not in logs


def test_fail_open_admits_unchecked_and_recovers(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    gateways: Callable[..., GatewayProcess],
) -> None:
    policy, gateway = _start(tmp_path, upstream, redis_server, gateways, "fail-open")
    rpm3, quota = policy.secrets["rpm3"], policy.secrets["quota"]
    assert chat(gateway.url, quota).status_code == 200

    redis_server.stop()
    for _ in range(5):  # more than rpm 3 allows: nothing can be checked, all pass
        assert chat(gateway.url, rpm3).status_code == 200
    for _ in range(2):
        assert chat(gateway.url, quota).status_code == 200
    status = limits_status(gateway.url, policy.admin)
    assert (status["state"], status["mode"], status["store"]) == ("degraded", "fail-open", "redis")
    assert status["error"] and "redis://" not in status["error"]

    redis_server.start()  # same port, empty
    _wait_state(gateway, policy.admin, "ok")
    assert limits_status(gateway.url, policy.admin)["error"] is None
    # Redis came back empty: the day's use, outage included, is raised from the usage store.
    day = key_usage(gateway.url, policy.admin, "quota")["tokens_per_day"]
    assert (day["used"], day["requests"]) == (3 * PER_REQUEST, 3)
    _assert_rpm_applies(gateway, rpm3)
    _assert_logged_once(gateway)
    _assert_slot_freed_after_a_blip(gateway, policy, upstream, redis_server)


def test_fail_closed_refuses_with_503_and_recovers(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    gateways: Callable[..., GatewayProcess],
) -> None:
    policy, gateway = _start(tmp_path, upstream, redis_server, gateways, "fail-closed")
    rpm3 = policy.secrets["rpm3"]
    assert chat(gateway.url, rpm3).status_code == 200

    redis_server.stop()
    requests_before = len(upstream.requests)
    for _ in range(4):
        refused = chat(gateway.url, rpm3)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "rate_limiter_unavailable"
        assert "redis://" not in refused.text and str(redis_server.port) not in refused.text
    assert len(upstream.requests) == requests_before  # nothing went upstream unchecked
    # A key without limits has nothing to check: it is served.
    assert chat(gateway.url, policy.secrets["free"]).status_code == 200
    status = limits_status(gateway.url, policy.admin)
    assert (status["state"], status["mode"]) == ("degraded", "fail-closed")
    assert status["error"]

    redis_server.start()
    _wait_state(gateway, policy.admin, "ok")
    _assert_rpm_applies(gateway, rpm3)  # the window restarted empty with Redis
    _assert_logged_once(gateway)


def _assert_slot_freed_after_a_blip(
    gateway: GatewayProcess, policy: LimitsPolicy, upstream: FakeUpstream, redis: RedisServer
) -> None:
    """A request that settles while Redis does not answer frees its slot once it answers."""
    secret = policy.secrets["one"]
    upstream.hold_stream_after_first_chunk = True
    upstream.release_stream.clear()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        request = client.build_request(
            "POST",
            CHAT_PATH,
            json=chat_body(stream=True),
            headers={"authorization": f"Bearer {secret}"},
        )
        response = client.send(request, stream=True)
        chunks = response.iter_raw()
        next(chunks)  # admitted: its slot is held in Redis
        _pause(redis, 1500)
        upstream.release_stream.set()
        assert b"[DONE]" in b"".join(chunks)  # settled while Redis did not answer
        response.close()
    upstream.hold_stream_after_first_chunk = False
    _wait_state(gateway, policy.admin, "ok")
    assert gateway.logs().count(LOST) == 2  # the settlement did meet Redis not answering
    assert chat(gateway.url, secret).status_code == 200  # freed now, not in 10 minutes


def _pause(redis: RedisServer, ms: int) -> None:
    """Redis stops answering for `ms` but keeps its data: a network blip, not a restart."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as sock:
        sock.sendall(f"CLIENT PAUSE {ms} ALL\r\n".encode())
        assert sock.recv(64).startswith(b"+OK")
