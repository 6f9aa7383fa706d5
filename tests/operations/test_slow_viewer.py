"""A viewer that stops reading is dropped, told why, and never slows requests down."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.operations.conftest import ops_policy
from tests.operations.sse import Viewer
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo

BACKLOG = 300
REQUESTS = 1500
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _stalled_viewer(gateway: GatewayProcess, token: str) -> socket.socket:
    """An SSE client with a tiny receive buffer that reads the headers, then nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", gateway.port))
    sock.sendall(
        f"GET /admin/api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    sock.settimeout(10)
    head = sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def _latencies(client: httpx.Client, url: str, key: str, count: int) -> list[float]:
    def one(_: int) -> float:
        started = time.perf_counter()
        response = client.post(url, json=CHAT, headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def test_a_stalled_viewer_is_dropped_without_slowing_requests(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = ops_policy(policy_repo, fake_upstream.url)
    gateway = start_gateway(
        policy_repo, "--events-viewer-backlog", str(BACKLOG), "--events-heartbeat", "0.5"
    )
    url, admin = gateway.url + "/v1/chat/completions", keys["admin"]
    status_url = gateway.url + "/admin/api/status"
    with httpx.Client(timeout=30) as client:
        _latencies(client, url, keys["alice"], 50)  # warm up
        before = _latencies(client, url, keys["alice"], 300)
        healthy = Viewer(gateway.url, admin)
        stalled = _stalled_viewer(gateway, admin)
        try:
            during = _latencies(client, url, keys["alice"], REQUESTS)
            status = client.get(status_url, headers={"authorization": f"Bearer {admin}"}).json()
            assert status["events"]["viewers"] == 1, "the stalled viewer was dropped"
            assert len(healthy.requests(REQUESTS, timeout=30)) == REQUESTS
            # Once it reads again, the stalled viewer learns why its stream ended.
            stalled.settimeout(15)
            received = b""
            while chunk := stalled.recv(65536):
                received += chunk
        finally:
            stalled.close()
            healthy.close()
    assert b"event: dropped" in received
    assert b"fell too far behind" in received
    assert received.rstrip().endswith(b"0"), "the stream was ended properly"
    p50_before, p50_during = statistics.median(before), statistics.median(during)
    # Generous bounds for a shared 2-core machine (other tests run beside this one); a request
    # path that waited on the stalled viewer would take seconds (its send timeout is 10 s).
    assert p50_during < p50_before * 3 + 0.01, (p50_before, p50_during)
    assert max(during) < 2.0
