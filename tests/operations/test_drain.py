"""SIGTERM drains: /readyz turns 503 first, new requests are served through the grace period,
then the listener closes and a stream still running at the drain timeout ends with an error
event, its usage counted; the process exits 0."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import Deployment
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, standard_policy
from tests.support.waiting import eventually

GRACE_S, TIMEOUT_S = 1.5, 1.0  # the grace holds two requests, however loaded the machine


def test_sigterm_drains_with_a_stream_in_flight(tmp_path: Path) -> None:
    root = tmp_path
    upstream = FakeUpstream().start()
    # The stream outlives the drain timeout by far, however loaded the machine: it ends only
    # when the gateway cuts it (closing its upstream connection), so this costs no time.
    upstream.hold_stream_after_first_chunk = True
    upstream.hold_limit_s = 60
    repo = PolicyRepo(root / "policy")
    keys = standard_policy(repo, upstream.url)
    gateway = GatewayProcess(
        repo.path,
        root / "state",
        "--drain-grace",
        str(GRACE_S),
        "--drain-timeout",
        str(TIMEOUT_S),
    ).start()
    d = Deployment(upstream, repo, gateway, keys)
    auth = {"authorization": f"Bearer {d.keys['alice']}"}
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    received: list[bytes] = []
    started = threading.Event()

    def stream() -> None:
        with httpx.stream(
            "POST", gateway.url + "/v1/chat/completions", json=body, headers=auth, timeout=20
        ) as response:
            for chunk in response.iter_raw():
                received.append(chunk)
                started.set()

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        assert started.wait(10)
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Readiness flips at once; the gateway still answers during the grace period.
        assert httpx.get(gateway.url + "/readyz").status_code == 503
        models = httpx.get(gateway.url + "/v1/models", headers=auth)
        assert models.status_code == 200
        assert models.headers["connection"] == "close"  # clients move to other instances
        # After the grace period the listener closes while the stream still runs.
        eventually(lambda: not _accepts(gateway.url), within_s=GRACE_S + TIMEOUT_S)
        assert gateway.proc.poll() is None and reader.is_alive()
        assert gateway.proc.wait(GRACE_S + TIMEOUT_S + 20) == 0
        elapsed = time.monotonic() - signalled
        assert elapsed >= GRACE_S + TIMEOUT_S, elapsed  # the stream was given its time
        reader.join(5)
    finally:
        gateway.kill()
        upstream.stop()
    text = b"".join(received).decode()
    assert "drain timeout" in text  # the stream's protocol error event
    assert "[DONE]" not in text
    assert "Stopping worker" in gateway.logs()
    with sqlite3.connect(root / "state" / "requests.sqlite3") as db:
        rows = [str(row) for row in db.execute("select * from requests")]
    # The cut stream was recorded (as broken, with its tokens counted) and flushed at exit.
    assert len(rows) == 1 and "gpt-4o-mini" in rows[0], rows


def _accepts(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.TransportError:
        return False
    return True
