"""A real HTTP fake of the OpenAI, Anthropic and Gemini APIs on 127.0.0.1, for tests.

It runs an aiohttp server on its own thread and event loop, so synchronous SDK clients can
call the gateway that calls it. Every request is recorded. Faults are scripted per request
with `fail_next(...)`: an error status, a delay, a reset mid-stream, slow chunks.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support import fake_replies as replies
from tests.support.loop_thread import ServedApp


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class Fault:
    status: int | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    reset_after_chunks: int | None = None
    chunk_delay_s: float = 0.0


class FakeUpstream(ServedApp):
    def __init__(self, chunks: int = 6, chunk_delay_s: float = 0.0) -> None:
        super().__init__()
        self.chunks = chunks
        self.chunk_delay_s = chunk_delay_s
        self.requests: list[Recorded] = []
        self.sent: list[bytes] = []
        """The bytes of every successful answer (a stream's events joined), in order."""
        self.streams_aborted = 0
        self.streams_completed = 0
        self.stream_started = threading.Event()
        self.release_stream = threading.Event()
        self.hold_stream_after_first_chunk = False
        self.hold_limit_s = 10.0
        """The longest a held stream waits for `release_stream`."""
        self._faults: deque[Fault] = deque()

    # lifecycle -------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def stop(self) -> None:
        self.release_stream.set()
        super().stop()

    def fail_next(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    def reset(self) -> None:
        """Forget recorded requests and answers, and drop unused faults (shared fakes)."""
        self.requests.clear()
        self.sent.clear()
        self._faults.clear()

    # serving ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        fault = self._faults.popleft() if self._faults else Fault()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            return web.json_response(
                fault.body or {"error": {"message": f"fake upstream error {fault.status}"}},
                status=fault.status,
                headers=fault.headers,
            )
        problem = replies.request_problem(request.path, body or {})
        if problem is not None:
            error = {"type": "invalid_request_error", "message": problem}
            return web.json_response({"type": "error", "error": error}, status=400)
        if request.method == "GET":
            return web.json_response({"object": "list", "data": []})
        reply = replies.reply_for(request.path, body or {}, self.chunks)
        if reply.events is None:
            text = json.dumps(reply.body)
            self.sent.append(text.encode())
            return web.json_response(text=text)
        self.sent.append(b"".join(reply.events))
        return await self._stream(request, reply.events, fault)

    async def _stream(
        self, request: web.Request, events: list[bytes], fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        delay = fault.chunk_delay_s or self.chunk_delay_s
        try:
            for index, event in enumerate(events):
                if fault.reset_after_chunks is not None and index == fault.reset_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                await response.write(event)
                if index == 0:
                    self.stream_started.set()
                    if self.hold_stream_after_first_chunk:
                        await self._wait_release(request)
                if delay:
                    await asyncio.sleep(delay)
            await response.write_eof()
            self.streams_completed += 1
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            self.streams_aborted += 1
            raise
        return response

    async def _wait_release(self, request: web.Request) -> None:
        """Hold the stream until released, noticing if the gateway closes the connection."""
        deadline = time.monotonic() + self.hold_limit_s
        while not self.release_stream.is_set() and time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the gateway closed the upstream connection")
            await asyncio.sleep(0.01)
