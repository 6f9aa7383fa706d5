"""A request blocked in translation cannot delay a concurrent request by more than 50 ms.

Against the real server: while large but legitimate requests are translated (OpenAI chat to
a Gemini-type route, one-word messages: the costliest body per byte we found, about
150 ns a byte), small requests on another route are timed and compared with the same
requests on an idle gateway. Medians over a fixed number of requests keep a loaded 2-core
machine from making the test flaky.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import new_secret
from tests.support.raw_client import post
from tests.support.serving import one_key, serving

ADDED_DELAY_LIMIT_S = 0.050
SMALL_REQUESTS = 25
LARGE_SENDERS = 2
LARGE_BODY_BYTES = 1024 * 1024
GEMINI_ANSWER = json.dumps(
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
    }
).encode()


class _Sink(BaseHTTPRequestHandler):
    """A Gemini upstream that reads the body without parsing it (the test process must not
    spend its own time on the large bodies it measures around)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(GEMINI_ANSWER)))
        self.end_headers()
        self.wfile.write(GEMINI_ANSWER)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _post(port: int, key: str, body: bytes) -> tuple[int, float]:
    auth = [(b"authorization", b"Bearer " + key.encode())]
    reply = post(port, "/v1/chat/completions", auth, body, timeout_s=30)
    return reply.status, reply.elapsed_s


def _large_body() -> bytes:
    """One-word messages up to about LARGE_BODY_BYTES: a legitimate, costly translation."""
    one = {"role": "user", "content": "x"}
    count = LARGE_BODY_BYTES // (len(json.dumps(one)) + 2)
    messages = [{"role": ("user", "assistant")[i % 2], "content": "x"} for i in range(count)]
    return json.dumps({"model": "far", "messages": messages}).encode()


class Site:
    def __init__(self, gateway: GatewayProcess, key: str) -> None:
        self.gateway, self.key = gateway, key


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = FakeUpstream().start()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    sink.daemon_threads = True
    sink_thread = threading.Thread(target=sink.serve_forever, daemon=True)
    sink_thread.start()
    secret = new_secret()
    try:
        with serving(
            tmp_path_factory.mktemp("fairness"),
            providers=f"""
            providers:
              sink:
                type: gemini
                base_url: http://127.0.0.1:{sink.server_address[1]}
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
              fake:
                type: openai-compatible
                base_url: {upstream.url}/v1
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
            """,
            routes="routes:\n  far:\n    targets: [sink/up-gemini]\n"
            "  near:\n    targets: [fake/up-gpt]\n",
            keys=one_key(secret),
            kill=True,
        ) as gateway:
            yield Site(gateway, secret)
    finally:
        sink.shutdown()
        sink.server_close()
        upstream.stop()


def _small_latencies(site: Site) -> list[float]:
    small = json.dumps({"model": "near", "messages": [{"role": "user", "content": "hi"}]})
    found = []
    for _ in range(SMALL_REQUESTS):
        status, took = _post(site.gateway.port, site.key, small.encode())
        assert status == 200
        found.append(took)
        time.sleep(0.01)
    return found


def test_a_large_translation_does_not_delay_a_small_request(site: Site) -> None:
    large = _large_body()
    status, large_took = _post(site.gateway.port, site.key, large)  # warm up, and time it
    assert status == 200
    _small_latencies(site)
    baseline = statistics.median(_small_latencies(site))

    stop = threading.Event()
    large_statuses: list[int] = []

    def send_large() -> None:
        while not stop.is_set():
            large_statuses.append(_post(site.gateway.port, site.key, large)[0])

    senders = [threading.Thread(target=send_large) for _ in range(LARGE_SENDERS)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.05)  # the large requests are on their way
        loaded = _small_latencies(site)
    finally:
        stop.set()
        for sender in senders:
            sender.join(60)
    added = statistics.median(loaded) - baseline
    numbers = (
        f"one large request {large_took * 1000:.0f} ms ({len(large) // 1024} KiB); small "
        f"request median {baseline * 1000:.1f} ms idle, {statistics.median(loaded) * 1000:.1f} "
        f"ms loaded (max {max(loaded) * 1000:.0f} ms); {len(large_statuses)} large requests"
    )
    print(numbers)
    assert large_statuses and set(large_statuses) == {200}, numbers
    assert added <= ADDED_DELAY_LIMIT_S, numbers
