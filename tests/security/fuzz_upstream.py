"""A fake upstream for the property-based suite that records each request's head byte for byte.

It is a plain asyncio server with a lenient HTTP/1.1 reader, as nginx and h11 are lenient:
a bare LF ends a line as a CRLF does, so a header smuggled in by a bare LF shows up in the
record as the separate header an upstream would see. What it answers is set per example
(`answer`): a valid reply of the path's protocol, an error whose message holds the fake's
own URL, a host name and key-shaped strings (the received credential among them), or a
200 that no client protocol can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tests.support import fake_replies as replies
from tests.support.loop_thread import LoopThread

MAX_HEAD = 64 * 1024
LEAK_HOST = "upstream-internal.corp.example.com"
LEAK_KEY = "sk-proj-Zk3q9WfLeakedUpstreamKey0123456789abcdefXYZ"


class Answer(Enum):
    """What the fake answers to every request of one example."""

    REPLY = "reply"
    """A valid reply of the protocol (a 400 when the body is not one it can answer)."""
    REJECT = "reject"
    """A 4xx blaming the client's request, leaking the upstream's secrets in its message."""
    FAIL = "fail"
    """A 5xx, leaking the same."""
    GARBAGE = "garbage"
    """A 200 whose body is not what the protocol answers."""


REJECT_STATUSES = (400, 404, 409, 413, 422)
"""Client errors that change no credential's state (a 401/403/429 would bench the fake's only
credential for the examples after)."""
FAIL_STATUSES = (500, 502, 503, 504)


@dataclass
class Received:
    head: bytes
    """The request line and header lines, exactly as they came (up to the blank line)."""
    body: bytes
    status: int
    """The status the fake answered with."""
    failed: bool
    """The fake's answer was a failure the gateway may report as 502/503/504."""


class RecordingUpstream:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer = Answer.REPLY
        self.status = 400
        self._thread = LoopThread()
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> RecordingUpstream:
        self._server = self._thread.run(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._thread.run(self._server.wait_closed())
        self._thread.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def leaks(self) -> tuple[str, ...]:
        """What the fake puts in its error messages that no client may ever read."""
        return (self.url, f"127.0.0.1:{self.port}", LEAK_HOST, LEAK_KEY)

    def expect(self, answer: Answer, status: int = 400) -> None:
        """Forget what was received; answer the next requests so."""
        self.received.clear()
        self.answer, self.status = answer, status

    # serving ---------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while True:
                head = await _read_head(reader)
                if head is None:
                    break
                headers = _headers(head)
                body = await _read_body(reader, headers)
                status, content_type, payload, failed = self._reply(head, headers, body)
                self.received.append(Received(head, body, status, failed))
                writer.write(
                    b"HTTP/1.1 %d FAKE\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (status, content_type.encode(), len(payload), payload)
                )
                await writer.drain()
        writer.close()

    def _reply(
        self, head: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, str, bytes, bool]:
        path = head.split(b"\n", 1)[0].split(b" ")[1].decode("latin-1").split("?", 1)[0]
        if self.answer is Answer.REJECT:
            return self.status, "application/json", self._leaky_error(path, headers), False
        if self.answer is Answer.FAIL:
            return self.status, "application/json", self._leaky_error(path, headers), True
        if self.answer is Answer.GARBAGE:
            return (
                200,
                "application/json",
                b'{"choices": "no", "candidates": 7, "content": 1}',
                True,
            )
        try:
            parsed = json.loads(body)
            reply = replies.reply_for(path, parsed, 3)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            # What a real upstream does with a body it cannot read: a 400 (leaky, as some are).
            return 400, "application/json", self._leaky_error(path, headers), False
        if reply.events is not None:
            return 200, "text/event-stream", b"".join(reply.events), False
        return 200, "application/json", json.dumps(reply.body).encode(), False

    def _leaky_error(self, path: str, headers: dict[bytes, bytes]) -> bytes:
        credential = b" ".join(
            headers.get(name, b"") for name in (b"authorization", b"x-api-key", b"x-goog-api-key")
        ).decode("latin-1")
        message = (
            f"Request to {self.url}{path} failed at {LEAK_HOST} (127.0.0.1:{self.port}): "
            f"key {LEAK_KEY} is not valid; you sent '{credential.strip()}'."
        )
        error: dict[str, Any]
        if path.startswith("/v1beta/"):
            error = {"error": {"code": self.status, "message": message, "status": "INVALID"}}
        elif path.startswith("/v1/messages"):
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": message},
            }
        else:
            error = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        return json.dumps(error).encode()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The request line and headers; a bare LF ends a line (lenient, like nginx and h11)."""
    head = b""
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if head:
                return head
            continue  # blank lines before a request line are skipped, as servers do
        head += line
        if len(head) > MAX_HEAD:
            raise ValueError("request head too large")


def _headers(head: bytes) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return body
            body += await reader.readexactly(size)
            await reader.readline()
    length = int(headers.get(b"content-length", b"0") or b"0")
    return await reader.readexactly(length) if length else b""
