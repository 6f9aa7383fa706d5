"""An upstream that lives in the test's event loop: an httpx transport the gateway's client uses.

It answers what tests/support/fake_upstream.py answers (the same `reply_for` bodies and SSE
events, so usage is 11 + 7 tokens), with no socket and no thread. Each request is recorded
with the host it was for, so a test can tell which provider (and which credential) served it.
Faults are scripted per host with `fail_next`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import fake_replies as replies


@dataclass(frozen=True)
class Seen:
    """One request the gateway sent upstream."""

    host: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Fault:
    """An error answer instead of the reply."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


TOKEN_PATH = "/oauth/token"


class ScriptedUpstream(httpx.AsyncBaseTransport):
    """Every provider of a test policy, told apart by host (`http://<name>.test`)."""

    def __init__(self, chunks: int = 3) -> None:
        self.chunks = chunks
        self.seen: list[Seen] = []
        self.tokens_issued = 0
        self._faults: dict[str, deque[Fault]] = {}

    def fail_next(self, host: str, *faults: Fault) -> None:
        self._faults.setdefault(host, deque()).extend(faults)

    def hosts(self) -> list[str]:
        """The host of each request, in order."""
        return [seen.host for seen in self.seen]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = await request.aread()
        host, path = request.url.host, request.url.path
        body = _json_or_none(raw)
        self.seen.append(Seen(host, path, dict(request.headers), body))
        queued = self._faults.get(host)
        if queued:
            fault = queued.popleft()
            answer = fault.body or {"error": {"message": f"scripted {fault.status}"}}
            return _json(fault.status, answer, fault.headers)
        if path == TOKEN_PATH:
            self.tokens_issued += 1
            token = {"access_token": f"token-{self.tokens_issued}", "expires_in": 600}
            return _json(200, token)
        reply = replies.reply_for(path, body or {}, self.chunks)
        if reply.events is None:
            return _json(200, reply.body)
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_Chunks(reply.events))


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """An answer whose body is still to be read, as from a real transport (`json=` would
    hand the gateway a body already read)."""
    headers = {"content-type": "application/json", **(headers or {})}
    return httpx.Response(status, headers=headers, stream=_Chunks([json.dumps(body).encode()]))


def _json_or_none(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None  # a token request's form body
    return parsed if isinstance(parsed, dict) else None


class _Chunks(httpx.AsyncByteStream):
    """A body delivered one chunk per read (an SSE stream: one event each), as a real
    upstream's chunks arrive."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
