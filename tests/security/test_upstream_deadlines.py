"""Every upstream read has a deadline: an upstream that sends its headers and then trickles
its body one byte at a time (so no read timeout ever fires) is cut off at the attempt's
`timeout_s`, and the client gets a clean 502 in its protocol.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.loop_thread import LoopThread
from tests.support.policy_repo import new_secret
from tests.support.serving import one_key, serving
from tests.upstream.raw_server import Exchange, Upstream, response_head

TIMEOUT_S = 1.0
"""The provider's whole-attempt timeout; its read timeouts are far longer."""
TRICKLE_EVERY_S = 0.2


async def trickle(ex: Exchange, status: str = "200 OK") -> None:
    """Headers at once, then one byte of a 1000-byte body every TRICKLE_EVERY_S."""
    await ex.send(response_head(status, "Content-Type: application/json", length=1000))
    for _ in range(1000):
        await ex.send(b" ")
        await asyncio.sleep(TRICKLE_EVERY_S)


async def trickle_error(ex: Exchange) -> None:
    await trickle(ex, "400 Bad Request")


async def trickle_stream(ex: Exchange) -> None:
    await ex.send(response_head("200 OK", "Content-Type: text/event-stream"))
    await ex.chunk(b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n')
    for _ in range(1000):
        await ex.chunk(b": still here\n\n")
        await asyncio.sleep(TRICKLE_EVERY_S)


@dataclass
class Rig:
    gateway: GatewayProcess
    key: str

    def post(self, path: str, body: dict[str, object]) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = httpx.post(
            self.gateway.url + path,
            json=body,
            headers={"x-api-key": self.key, "anthropic-version": "2023-06-01"},
            timeout=10,  # without a deadline the gateway would wait 200 s: this fails first
        )
        return response, time.monotonic() - started


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    thread = LoopThread()
    upstream = Upstream(
        routes={
            "/count/v1/messages/count_tokens": trickle,
            "/answer/v1/messages": trickle,
            "/error/v1/messages": trickle_error,
            "/stream/v1/messages": trickle_stream,
        }
    )
    thread.run(upstream.start())
    timeouts = {"timeout_s": TIMEOUT_S, "first_byte_timeout_s": 30, "idle_timeout_s": 30}
    providers = {
        name: {
            "type": "anthropic",
            "base_url": upstream.url(f"/{name}"),
            "max_retries": 0,
            **timeouts,
        }
        for name in ("count", "answer", "error", "stream")
    }
    routes = {f"r-{name}": {"targets": [f"{name}/claude-m"]} for name in providers}
    key = new_secret()
    try:
        with serving(
            tmp_path_factory.mktemp("deadlines"),
            providers=json.dumps({"providers": providers}),
            routes=json.dumps({"routes": routes}),
            keys=one_key(key),
        ) as gateway:
            yield Rig(gateway, key)
    finally:
        thread.run(upstream.stop())
        thread.stop()


MESSAGES = [{"role": "user", "content": "hi"}]


def test_count_tokens_is_cut_off_at_the_deadline(rig: Rig) -> None:
    response, took = rig.post(
        "/v1/messages/count_tokens", {"model": "r-count", "messages": MESSAGES}
    )
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["type"] == "api_error"
    assert f"longer than its {TIMEOUT_S:g} s timeout" in error["message"]
    assert TIMEOUT_S - 0.1 <= took < TIMEOUT_S + 1.5


def test_an_answer_is_cut_off_at_the_deadline(rig: Rig) -> None:
    body = {"model": "r-answer", "max_tokens": 8, "messages": MESSAGES}
    response, took = rig.post("/v1/messages", body)
    assert response.status_code == 502, response.text
    assert took < TIMEOUT_S + 1.5


def test_an_error_answer_is_cut_off_at_the_deadline(rig: Rig) -> None:
    body = {"model": "r-error", "max_tokens": 8, "messages": MESSAGES}
    response, took = rig.post("/v1/messages", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "the upstream rejected the request"
    assert took < TIMEOUT_S + 1.5


def test_a_stream_is_cut_off_at_the_deadline(rig: Rig) -> None:
    body = {"model": "r-stream", "max_tokens": 8, "messages": MESSAGES, "stream": True}
    response, took = rig.post("/v1/messages", body)
    assert response.status_code == 200  # the stream had begun; it ends with an error event
    assert "event: error" in response.text and "incomplete" in response.text
    assert took < TIMEOUT_S + 1.5
