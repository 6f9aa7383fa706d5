#!/usr/bin/env python3
"""A fast fake OpenAI-compatible upstream for benchmarks and loopback tests.

A raw asyncio Protocol HTTP/1.1 server (uvloop when importable, stdlib otherwise): keep-alive,
pipelined requests, Content-Length and chunked request bodies. Responses are built once per
(model, mode) and cached, so the fake costs a few microseconds per request and is never what a
benchmark measures.

  POST /v1/chat/completions (also /chat/completions)
      non-stream: a chat.completion with usage
      "stream": true: an SSE stream of --chunks content chunks, a finish chunk, a usage chunk
      when stream_options.include_usage is set, then `data: [DONE]`; one HTTP chunk per event
  GET /v1/models (also /models), GET /health

    python bench/fake_upstream.py --port 18000 [--chunks 20] [--delay-ms 0] [--chunk-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import deque
from dataclasses import dataclass, field
from typing import cast

try:
    from orjson import loads as parse_json
except ImportError:  # stdlib only is fine: it costs a few microseconds more
    from json import loads as parse_json  # type: ignore[assignment]

CREATED = 1_700_000_000
COMPLETION_ID = "chatcmpl-bench000000000000000000000000"
WORDS = ("Hello", " from", " the", " fake", " upstream", ".")
PROMPT_TOKENS = 12
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
MAX_CACHED_MODELS = 64


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _head(status: bytes, content_type: bytes, length: int | None, close: bool) -> bytes:
    lines = [b"HTTP/1.1 " + status, b"Content-Type: " + content_type]
    if length is None:
        lines += [b"Cache-Control: no-cache", b"Transfer-Encoding: chunked"]
    else:
        lines.append(b"Content-Length: %d" % length)
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _plain(status: bytes, body: bytes, close: bool = False) -> bytes:
    return _head(status, b"application/json", len(body), close) + body


@dataclass(frozen=True)
class Replies:
    """The canned bytes for one model name."""

    completion: bytes
    stream_head: bytes
    stream_events: tuple[bytes, ...]  # each already framed as one HTTP chunk
    usage_event: bytes
    done_event: bytes


def build_replies(model: str, chunks: int) -> Replies:
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": chunks,
        "total_tokens": PROMPT_TOKENS + chunks,
    }
    text = "".join(WORDS[i % len(WORDS)] for i in range(chunks))
    completion = _dumps(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )

    def event(delta: dict[str, str] | None, finish: str | None = None, **extra: object) -> bytes:
        body: dict[str, object] = {
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        body.update(extra)
        return _frame(b"data: " + _dumps(body) + b"\n\n")

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": WORDS[i % len(WORDS)]}) for i in range(chunks)]
    events.append(event({}, finish="stop"))
    return Replies(
        completion=_head(b"200 OK", b"application/json", len(completion), False) + completion,
        stream_head=_head(b"200 OK", b"text/event-stream", None, False),
        stream_events=tuple(events),
        usage_event=event(None, usage=usage),
        done_event=_frame(b"data: [DONE]\n\n") + b"0\r\n\r\n",
    )


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class Settings:
    chunks: int = 20
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    replies: dict[str, Replies] = field(default_factory=dict)
    models_body: bytes = b""

    def replies_for(self, model: str) -> Replies:
        found = self.replies.get(model)
        if found is None:
            if len(self.replies) >= MAX_CACHED_MODELS:
                self.replies.clear()
            found = self.replies[model] = build_replies(model, self.chunks)
        return found


class ChatProtocol(asyncio.Protocol):
    """One client connection: parse requests as they come, answer them in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[bytes, tuple[bytes, ...], bool]] = deque()
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            request = self._take_request()
            if request is None:
                return
            self._dispatch(*request)

    def _take_request(self) -> tuple[bytes, bytes, bytes, bool] | None:
        """(method, path, body, close) of the next complete request, or None if incomplete."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._fail(b"431 Request Header Fields Too Large")
            return None
        head = bytes(buf[:end]).split(b"\r\n")
        parts = head[0].split(b" ")
        if len(parts) != 3:
            self._fail(b"400 Bad Request")
            return None
        method, target, version = parts
        length = 0
        chunked = False
        close = version == b"HTTP/1.0"
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.strip().lower()
                close = value == b"close" or (close and value != b"keep-alive")
        start = end + 4
        if chunked:
            decoded = _dechunk(buf, start)
            if decoded is None:
                return None
            body, start = decoded
        else:
            if length > MAX_BODY:
                self._fail(b"413 Content Too Large")
                return None
            if len(buf) < start + length:
                return None
            body = bytes(buf[start : start + length])
            start += length
        del buf[:start]
        return method, target.split(b"?", 1)[0], body, close

    def _fail(self, status: bytes) -> None:
        if self.transport is not None:
            self.transport.write(_plain(status, b'{"error":{"message":"bad request"}}', True))
            self.transport.close()
            self.transport = None
        self.buf.clear()

    def _dispatch(self, method: bytes, path: bytes, body: bytes, close: bool) -> None:
        settings = self.settings
        if path in (b"/v1/chat/completions", b"/chat/completions") and method == b"POST":
            self._chat(body, close)
            return
        if method == b"GET" and path in (b"/v1/models", b"/models"):
            self._send(_plain(b"200 OK", settings.models_body, close), close)
        elif method == b"GET" and path == b"/health":
            self._send(_plain(b"200 OK", b'{"status":"ok"}', close), close)
        else:
            self._send(_plain(b"404 Not Found", b'{"error":{"message":"not found"}}', close), close)

    def _chat(self, body: bytes, close: bool) -> None:
        try:
            request = parse_json(body)
            model = str(request.get("model") or "gpt-4o-mini")
        except (ValueError, AttributeError):
            error = b'{"error":{"message":"bad json"}}'
            self._send(_plain(b"400 Bad Request", error, close), close)
            return
        replies = self.settings.replies_for(model)
        if request.get("stream") is not True:
            self._reply(replies.completion, b"", close)
            return
        options = request.get("stream_options") or {}
        tail = replies.done_event
        if isinstance(options, dict) and options.get("include_usage"):
            tail = replies.usage_event + tail
        self._reply(replies.stream_head, tail, close, stream=replies.stream_events)

    def _reply(self, head: bytes, tail: bytes, close: bool, stream: tuple[bytes, ...] = ()) -> None:
        settings = self.settings
        paced = bool(stream) and settings.chunk_delay_s > 0
        if not settings.delay_s and not paced and not self.pending:
            self._send(head + b"".join(stream) + tail, close)
            return
        # Delayed replies keep their order: one task per connection serves the queue.
        pieces = (*stream, tail) if paced else (b"".join(stream) + tail,)
        self.pending.append((head, pieces, close))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        settings = self.settings
        while self.pending and self.transport is not None:
            head, pieces, close = self.pending.popleft()
            if settings.delay_s:
                await asyncio.sleep(settings.delay_s)
            self._send(head + pieces[0], close and len(pieces) == 1)
            for i, piece in enumerate(pieces[1:], start=2):
                await asyncio.sleep(settings.chunk_delay_s)
                if self.transport is None:
                    return
                self._send(piece, close and i == len(pieces))

    def _send(self, data: bytes, close: bool) -> None:
        if self.transport is not None:
            self.transport.write(data)
            if close:
                self.transport.close()


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at pos: (body, end), or None while incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            # Skip trailers up to the empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


def models_body(names: list[str]) -> bytes:
    data = [{"id": n, "object": "model", "created": CREATED, "owned_by": "bench"} for n in names]
    return _dumps({"object": "list", "data": data})


async def serve(host: str, port: int, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ChatProtocol(settings), host, port, reuse_address=True, backlog=4096
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port} ({type(loop).__module__})", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18000)
    ap.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="delay before the first byte")
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between SSE chunks")
    ap.add_argument("--models", default="gpt-4o-mini,gpt-4o", help="comma list for /v1/models")
    args = ap.parse_args(argv)
    settings = Settings(
        chunks=args.chunks,
        delay_s=args.delay_ms / 1000,
        chunk_delay_s=args.chunk_delay_ms / 1000,
        models_body=models_body([m for m in args.models.split(",") if m]),
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port, settings))
    else:
        uvloop.run(serve(args.host, args.port, settings))


if __name__ == "__main__":
    main()
