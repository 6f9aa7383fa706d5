"""A client that reads a stream slowly holds the upstream back: the gateway relays chunks
straight from the upstream's connection to the client's, and must stop reading the upstream
while the client's buffer is full instead of holding the stream in memory."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web

from tests.support.gateway_process import GatewayProcess
from tests.support.loop_thread import ServedApp
from tests.support.policy_repo import PolicyRepo, standard_policy

EVENTS = 1000
EVENT_TEXT = "x" * 65_000
"""About 64 MB in all: more than every socket buffer between the upstream and the client."""


def _event(text: str) -> bytes:
    delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [delta]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


USAGE = {"prompt_tokens": 3, "completion_tokens": EVENTS, "total_tokens": EVENTS + 3}
TAIL = (
    b"data: "
    + json.dumps(
        {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    ).encode()
    + b"\n\ndata: [DONE]\n\n"
)


class FloodUpstream(ServedApp):
    """An OpenAI chat stream of EVENTS large events, written as fast as the gateway reads."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        """Bytes the upstream has handed to its socket so far."""
        self.done = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._stream)
        return app

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        event = _event(EVENT_TEXT)
        for _ in range(EVENTS):
            await response.write(event)  # waits while the gateway is not reading
            self.sent += len(event)
        await response.write(TAIL)
        await response.write_eof()
        self.done = True
        return response


@pytest.fixture
def flood() -> Iterator[FloodUpstream]:
    upstream = FloodUpstream().start()
    yield upstream
    upstream.stop()


def _request(key: str) -> bytes:
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    ).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n"
        + f"authorization: Bearer {key}\r\n".encode()
        + f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_a_slow_reader_stalls_the_upstream_and_still_gets_every_byte(
    flood: FloodUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = standard_policy(policy_repo, flood.url)
    gateway = start_gateway(policy_repo)
    total = EVENTS * len(_event(EVENT_TEXT))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.sendall(_request(keys["alice"]))
        received = bytearray(client.recv(4096))
        assert received.startswith(b"HTTP/1.1 200"), received[:200]

        time.sleep(1.0)  # not reading: the buffers between fill up, then the upstream waits
        stalled_at = flood.sent
        time.sleep(0.5)
        assert flood.sent == stalled_at, "the upstream kept sending to a client that reads nothing"
        assert stalled_at < total / 2, f"{stalled_at} of {total} bytes left the upstream"
        assert not flood.done

        deadline = time.monotonic() + 60
        while not received.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
            data = client.recv(1 << 20)
            if not data:
                break
            received += data
    assert flood.done
    assert received.count(EVENT_TEXT.encode()) == EVENTS
    assert b"data: [DONE]" in received[-200:]
