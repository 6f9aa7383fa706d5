"""A rolling restart under steady load drops nothing: two gateways on one Redis behind a
loopback haproxy that probes /readyz; one gateway gets SIGTERM, drains, exits 0 and comes back
on the same port while clients keep sending, streaming and not. Every request must succeed."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess, free_port
from tests.support.policy_repo import PolicyRepo, standard_policy
from tests.support.redis_server import running_redis_server
from tests.support.waiting import eventually

CLIENTS = 6
GRACE_S = 1.0  # five health-check intervals: haproxy has marked the gateway down by then
LIMITS = "default: {rpm: 1000000}\ntiers: {}\n"  # counted in the shared Redis, never reached

HAPROXY_CFG = """\
global
    maxconn 512

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 1s
    # A connection refused (a gateway between its exit and its restart, before a check saw it)
    # is retried, on the other server.
    retries 3
    option redispatch 1
    # One server connection per request: a draining gateway's `Connection: close` never meets
    # a request already sent on a reused connection.
    option http-server-close

frontend clients
    bind 127.0.0.1:{front}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    http-response set-header x-served-by %s  # the server's name: g1 or g2
    default-server inter 200ms fastinter 200ms downinter 200ms fall 1 rise 1
    server g1 127.0.0.1:{port1} check
    server g2 127.0.0.1:{port2} check
"""


@contextmanager
def running_haproxy(directory: Path, ports: tuple[int, int]) -> Iterator[str]:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.fail("haproxy is not installed; run `./dev just system-deps`")
    front = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(HAPROXY_CFG.format(front=front, port1=ports[0], port2=ports[1]))
    log = (directory / "haproxy.log").open("wb")
    with log:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{front}"
    try:
        eventually(lambda: _answers(url + "/readyz"), within_s=5)
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


class Load:
    """Client threads sending through the load balancer until stopped; every outcome counted."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.served_by: list[tuple[float, str]] = []
        """(monotonic time, g1 or g2) of each request served."""
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def served(self, by: str | None = None, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for t, s in self.served_by if t >= since and by in (None, s))

    def _run(self, index: int) -> None:
        headers = {"authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                streaming = (index + n) % 2 == 0
                try:
                    server, problem = self._one(client, streaming)
                except httpx.HTTPError as exc:
                    server, problem = "", f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if problem is None:
                        self.served_by.append((time.monotonic(), server))
                    else:
                        self.failures.append(problem)

    @staticmethod
    def _one(client: httpx.Client, streaming: bool) -> tuple[str, str | None]:
        """The server that answered, and what was wrong with its answer (None: nothing)."""
        body = {
            "model": "gpt-4o-mini",
            "stream": streaming,
            "messages": [{"role": "user", "content": "hi"}],
        }
        if not streaming:
            response = client.post("/v1/chat/completions", json=body)
            server = response.headers.get("x-served-by", "")
            if response.status_code != 200:
                return server, f"{response.status_code}: {response.text[:200]}"
            return server, None
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            text = response.read().decode()
        server = response.headers.get("x-served-by", "")
        if response.status_code != 200 or "[DONE]" not in text or '"error"' in text:
            return server, f"stream {response.status_code}: {text[-200:]}"
        return server, None


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_restarting_one_of_two_gateways_under_load_fails_no_request(tmp_path: Path) -> None:
    # Streams of six chunks 50 ms apart: some are always in flight when the listener closes.
    upstream = FakeUpstream(chunks=6, chunk_delay_s=0.05).start()
    repo = PolicyRepo(tmp_path / "policy")
    keys = standard_policy(repo, upstream.url, limits=LIMITS)
    started = time.monotonic()
    with running_redis_server(tmp_path / "redis") as redis:
        args = ("--redis-url", redis.url, "--drain-grace", str(GRACE_S), "--drain-timeout", "5")
        gateways = [GatewayProcess(repo.path, tmp_path / f"state{i}", *args) for i in (1, 2)]
        restarted = gateways[0]
        try:
            _start_together(gateways)
            ports = (gateways[0].port, gateways[1].port)
            with running_haproxy(tmp_path, ports) as url, Load(url, keys["alice"]) as load:
                eventually(lambda: load.served(by="g1") >= 10 and load.served(by="g2") >= 10)
                assert restarted.proc is not None
                restarted.proc.send_signal(signal.SIGTERM)
                assert restarted.proc.wait(GRACE_S + 8) == 0
                restarted.start()  # same port; returns once its /readyz answers 200
                back = time.monotonic()
                eventually(lambda: load.served(by="g1", since=back) >= 20, within_s=5)
        finally:
            for gateway in gateways:
                gateway.kill()
            upstream.stop()
    print(
        f"rollout: {load.served()} requests served in {time.monotonic() - started:.1f} s, "
        f"{len(load.failures)} failed"
    )
    assert load.failures == [], load.failures[:5]


def _start_together(gateways: list[GatewayProcess]) -> None:
    threads = [threading.Thread(target=gateway.start) for gateway in gateways]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    for gateway in gateways:
        assert gateway.proc is not None and gateway.proc.poll() is None, gateway.logs()
