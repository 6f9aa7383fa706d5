"""With --workers N, the workers share through Redis what they observe: every worker reports
what all of them served, and sits out a credential any of them saw rate limited."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from tests.limits_e2e.calls import chat, key_usage
from tests.limits_e2e.policy import KeySpec, LimitsPolicy
from tests.operations.sse import Viewer
from tests.support.fake_upstream import FakeUpstream, Fault
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer

REQUESTS = 24
ASKS = 8
"""Usage reads, each on a new connection, so that each worker answers some of them."""


def _workers_with_an_upstream_connection(gateway: GatewayProcess, port: int) -> int:
    """Worker processes holding a (keep-alive) connection to 127.0.0.1:port: the ones that
    served at least one of the requests. Linux /proc: socket inodes of each child process."""
    assert gateway.proc is not None
    children = Path(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children").read_text()
    peer = f"0100007F:{port:04X}"
    connected = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == peer and fields[3] == "01":  # remote address, ESTABLISHED
            connected.add(fields[9])  # inode
    serving = 0
    for pid in children.split():
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        serving += bool(inodes & connected)
    return serving


def _subscribed_workers(redis_url: str) -> int:
    """Subscribers on the gateway's event channels (each worker subscribes before serving)."""
    client = redis.Redis.from_url(redis_url)
    try:
        channels = client.pubsub_channels("modelgate:events:*")
        return sum(count for _, count in client.pubsub_numsub(*channels)) if channels else 0
    finally:
        client.close()


@pytest.fixture
def two_workers(
    tmp_path: Path,
    upstream: FakeUpstream,
    redis_server: RedisServer,
    gateways: Callable[..., GatewayProcess],
) -> tuple[LimitsPolicy, GatewayProcess]:
    """A policy with one key, `team`, served by a gateway of two workers on one Redis."""
    policy = LimitsPolicy.create(tmp_path / "policy", upstream.url, {"team": KeySpec()})
    gateway = gateways(policy.repo, "--workers", "2", "--redis-url", redis_server.url)
    started = time.monotonic() + 20
    while _subscribed_workers(redis_server.url) < 2:  # the second worker may still be starting
        assert time.monotonic() < started, "the workers did not both subscribe"
        time.sleep(0.05)
    return policy, gateway


def _until_both_workers_served(
    gateway: GatewayProcess, upstream: FakeUpstream, secret: str, at_least: int
) -> int:
    """Requests, one connection each, until both workers served one; how many were sent."""
    deadline = time.monotonic() + 20
    served = 0
    port = int(upstream.url.rsplit(":", 1)[1])
    while served < at_least or _workers_with_an_upstream_connection(gateway, port) < 2:
        assert time.monotonic() < deadline, "one worker took every connection"
        assert chat(gateway.url, secret).status_code == 200
        served += 1
    return served


def test_every_worker_counts_and_streams_what_all_workers_served(
    two_workers: tuple[LimitsPolicy, GatewayProcess], upstream: FakeUpstream
) -> None:
    policy, gateway = two_workers
    viewer = Viewer(gateway.url, policy.admin)  # connected to one of the two workers
    try:
        # One connection per request: the kernel hands them to either worker.
        served = _until_both_workers_served(gateway, upstream, policy.secrets["team"], REQUESTS)

        events = viewer.requests(served, timeout=10)
        assert len({frame.data["request_id"] for frame in events if frame.data}) == served

        def totals() -> list[int]:
            return [
                key_usage(gateway.url, policy.admin, "team")["since_start"]["requests"]
                for _ in range(ASKS)
            ]

        for _ in range(50):  # batches cross within about 0.1 s
            if totals() == [served] * ASKS:
                break
            time.sleep(0.1)
        assert totals() == [served] * ASKS

        for _ in range(ASKS):
            metrics = httpx.get(
                gateway.url + "/metrics",
                headers={"authorization": f"Bearer {policy.admin}"},
                timeout=10,
            ).text
            counted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("modelgate_requests_total{") and 'key="team"' in line
            )
            assert counted == served
    finally:
        gateway.stop()  # ends the viewer's stream, so closing it need not wait
        viewer.close()


def test_a_429_one_worker_met_cools_the_credential_on_every_worker(
    two_workers: tuple[LimitsPolicy, GatewayProcess], upstream: FakeUpstream
) -> None:
    policy, gateway = two_workers
    secret = policy.secrets["team"]
    _until_both_workers_served(gateway, upstream, secret, 2)
    upstream.reset()
    upstream.fail_next(
        Fault(
            status=429,
            headers={"retry-after": "30"},
            body={"error": {"message": "slow down", "type": "rate_limit_error"}},
        )
    )
    first = chat(gateway.url, secret)
    assert first.status_code == 503  # the route's only credential now cools for 30 s
    time.sleep(0.5)  # the cooldown crosses to the other worker within about 0.1 s
    answers = [chat(gateway.url, secret) for _ in range(20)]  # a new connection each
    assert [a.status_code for a in answers] == [503] * 20
    assert all(0 < int(a.headers["retry-after"]) <= 30 for a in answers)
    assert len(upstream.requests) == 1  # no worker asked the cooling credential again
