"""With --workers 2, a budget alert fired by one worker reaches the event stream of every
worker (through the Redis fan-out), and fires once: each viewer gets it exactly once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.limits_e2e.calls import chat
from tests.operations.sse import Frame, Viewer
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret
from tests.support.redis_server import RedisServer

PROVIDERS = """
providers:
  fake:
    type: openai
    base_url: {url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
"""
ROUTES = "routes:\n  gpt-4o-mini: {targets: [fake/gpt-4o-mini]}\n"
TEAMS = "teams:\n  search:\n    limits: {tokens_per_day: 100}\n"
ALERTS = "alerts:\n  - scopes: [team:search]\n    limits: [tokens_per_day]\n    thresholds: [10]\n"
"""The fake upstream's 18 tokens are 18% of the team's day: the first request alerts."""
MAX_VIEWERS = 40


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


def _subscribed_workers(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        channels = client.pubsub_channels("modelgate:events:*")
        return sum(count for _, count in client.pubsub_numsub(*channels)) if channels else 0
    finally:
        client.close()


def _workers_holding_a_connection(gateway: GatewayProcess) -> int:
    """Worker processes with an established connection on the gateway's port (the viewers'
    streams). Linux /proc: socket inodes of each child process."""
    assert gateway.proc is not None
    children = Path(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children").read_text()
    local = f"0100007F:{gateway.port:04X}"
    accepted = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "01":  # local address, ESTABLISHED
            accepted.add(fields[9])
    holding = 0
    for pid in children.split():
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        holding += bool(inodes & accepted)
    return holding


def _alerts(viewer: Viewer, wait_s: float) -> list[Frame]:
    """The budget_alert frames the viewer gets within `wait_s`."""
    found: list[Frame] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = viewer.next(timeout=left)
        except Exception:  # queue.Empty: nothing more in time
            break
        if frame.event == "budget_alert":
            found.append(frame)
    return found


def test_a_budget_alert_reaches_the_event_stream_of_every_worker(
    tmp_path: Path, upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    secret, admin = new_secret(), new_secret()
    repo = PolicyRepo(tmp_path / "policy")
    repo.write("providers.yaml", PROVIDERS.format(url=upstream.url))
    repo.write("routes.yaml", ROUTES)
    repo.write("teams.yaml", TEAMS)
    repo.write("alerts.yaml", ALERTS)
    repo.write(
        "keys.yaml",
        f"keys:\n  - {{id: k1, hash: {hash_of(secret)}, team: search}}\n"
        f"admins:\n  - {{id: ops, hash: {hash_of(admin)}}}\n",
    )
    repo.commit("a team whose first request alerts")
    gateway = GatewayProcess(
        repo.path, tmp_path / "state", "--workers", "2", "--redis-url", redis_server.url
    ).start()
    viewers: list[Viewer] = []
    try:
        started = time.monotonic() + 20
        while _subscribed_workers(redis_server.url) < 2:
            assert time.monotonic() < started, "the workers did not both subscribe"
            time.sleep(0.05)
        # The kernel hands each connection to either worker: open streams until both hold one.
        while len(viewers) < 2 or _workers_holding_a_connection(gateway) < 2:
            assert len(viewers) < MAX_VIEWERS, "one worker took every viewer"
            viewers.append(Viewer(gateway.url, admin))

        assert chat(gateway.url, secret).status_code == 200

        for viewer in viewers:
            (alert,) = _alerts(viewer, wait_s=3 if viewer is viewers[0] else 0.5)
            assert alert.data is not None
            assert (alert.data["scope"], alert.data["limit"]) == ("team:search", "tokens_per_day")
            assert (alert.data["threshold"], alert.data["kind"]) == (10, "team")
    finally:
        gateway.stop()  # ends the streams, so closing the viewers need not wait
        for viewer in viewers:
            viewer.close()
