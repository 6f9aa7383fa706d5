#!/usr/bin/env python3
"""Fake streaming LLM upstream for the streams-at-scale benchmark: OpenAI and Anthropic SSE.

    POST /v1/chat/completions {"stream": true}  OpenAI chat.completion.chunk SSE: a role chunk,
        C content chunks, a finish chunk, a usage chunk, data: [DONE]
    POST /v1/messages {"stream": true}          Anthropic Messages SSE: message_start,
        content_block_start, C content_block_delta (text_delta), content_block_stop,
        message_delta (stop_reason and usage), message_stop
    GET /health  ok
    GET /stats[?reset=1]  counters and timer lateness (JSON); reset=1 restarts them

C is the request's max_tokens (else --chunks); chunks are --chunk-ms apart, +- --jitter-ms
(default 30 +- 10: 20-40 ms, like a model's tokens). Each content chunk's text is
"~ts~<20-digit time.monotonic_ns()>~ ", taken just before its write, so a client on this machine
measures each chunk's delay as receive_ns - send_ns (bench/streams/load.py).

Raw asyncio protocol (uvloop) with a 1 ms timer wheel: one loop callback a millisecond writes
every chunk due, so the upstream's cost per chunk is one bytes join and one write, and one core
holds thousands of streams next to the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import cast

import uvloop

now_ns = time.monotonic_ns
STAMP_DIGITS = 20

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
STREAM_PATHS = (b"/v1/chat/completions", b"/chat/completions", b"/v1/messages")


def http_chunk(payload: str) -> bytes:
    data = payload.encode()
    return b"%x\r\n" % len(data) + data + b"\r\n"


def http_reply(status: bytes, body: bytes, close: bool = False) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n"
        + body
    )  # fmt: skip


@dataclass(frozen=True)
class Wire:
    """One protocol's stream as pre-built bytes; a content chunk is pre + stamp + post."""

    start: bytes
    pre: bytes
    post: bytes
    end: bytes


def stamped(pre: str, post: str) -> tuple[bytes, bytes]:
    """The HTTP chunk around a content event whose text is a fixed-width stamp."""
    size = len(pre.encode()) + STAMP_DIGITS + len(post.encode())
    return b"%x\r\n" % size + pre.encode(), post.encode() + b"\r\n"


def openai_wire(model: str, chunks: int) -> Wire:
    head = (
        'data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,'
        f'"model":{model},"system_fingerprint":"fp_fake","choices":'
    )
    role = '[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    finish = '[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    usage = (
        '[],"usage":{"prompt_tokens":12,'
        f'"completion_tokens":{chunks},"total_tokens":{12 + chunks}}}}}\n\n'
    )
    pre, post = stamped(
        head + '[{"index":0,"delta":{"content":"~ts~', '~ "},"finish_reason":null}]}\n\n'
    )
    end = http_chunk(head + finish) + http_chunk(head + usage) + http_chunk("data: [DONE]\n\n")
    return Wire(http_chunk(head + role), pre, post, end + b"0\r\n\r\n")


def anthropic_wire(model: str, chunks: int) -> Wire:
    start = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_fake",'
        f'"type":"message","role":"assistant","model":{model},"content":[],"stop_reason":null,'
        '"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
    )
    block = (
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        '"content_block":{"type":"text","text":""}}\n\n'
    )
    pre, post = stamped(
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        '"delta":{"type":"text_delta","text":"~ts~',
        '~ "}}\n\n',
    )
    stop = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    delta = (
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        f'"stop_sequence":null}},"usage":{{"output_tokens":{chunks}}}}}\n\n'
    )
    end = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    return Wire(
        http_chunk(start) + http_chunk(block),
        pre,
        post,
        http_chunk(stop) + http_chunk(delta) + http_chunk(end) + b"0\r\n\r\n",
    )


@dataclass
class Stats:
    streams_started: int = 0
    anthropic_streams: int = 0
    streams_done: int = 0
    streams_aborted: int = 0
    active: int = 0
    chunks: int = 0
    late_max_ns: int = 0
    late_sum_ns: int = 0
    late_n: int = 0
    late_over_5ms: int = 0

    def as_json(self) -> dict[str, object]:
        mean = round(self.late_sum_ns / self.late_n / 1e3, 1) if self.late_n else None
        return {
            "pid": os.getpid(),
            "streams_started": self.streams_started,
            "anthropic_streams": self.anthropic_streams,
            "streams_done": self.streams_done,
            "streams_aborted": self.streams_aborted,
            "active": self.active,
            "chunks": self.chunks,
            "late_mean_us": mean,
            "late_max_ms": round(self.late_max_ns / 1e6, 2),
            "late_over_5ms": self.late_over_5ms,
            "cpu_s": round(sum(os.times()[:2]), 3),
        }

    def reset(self) -> None:
        """Counters restart for the next cell; the streams still open stay counted."""
        self.streams_started = self.anthropic_streams = self.streams_done = 0
        self.streams_aborted = self.chunks = 0
        self.late_max_ns = self.late_sum_ns = self.late_n = self.late_over_5ms = 0


STATS = Stats()


@dataclass
class Stream:
    conn: Connection
    wire: Wire
    left: int
    close: bool


class Wheel:
    """A 1 ms timer wheel: slots[tick] holds the streams whose next chunk is due at that tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, chunk_ms: float, jitter_ms: float) -> None:
        self.loop, self.chunk_ms, self.jitter_ms = loop, chunk_ms, jitter_ms
        self.slots: dict[int, list[Stream]] = {}
        self.t0 = now_ns()
        self.done_tick = 0  # every tick up to this one was written
        self.armed = False

    def gap_ms(self) -> int:
        gap = self.chunk_ms + random.uniform(-self.jitter_ms, self.jitter_ms)
        return max(1, round(gap))

    def add(self, stream: Stream, tick: int) -> None:
        slot = self.slots.get(tick)
        if slot is None:
            self.slots[tick] = [stream]
        else:
            slot.append(stream)
        if not self.armed:
            self.armed = True
            self.loop.call_later(0.001, self.run)

    def start(self, stream: Stream) -> None:
        now_tick = (now_ns() - self.t0) // 1_000_000
        self.add(stream, max(now_tick, self.done_tick) + self.gap_ms())

    def run(self) -> None:
        now_tick = (now_ns() - self.t0) // 1_000_000
        written = 0
        for tick in range(self.done_tick + 1, now_tick + 1):
            due = self.slots.pop(tick, None)
            if not due:
                continue
            due_ns = self.t0 + tick * 1_000_000
            for stream in due:
                written += self.write(stream, due_ns, now_tick)
        STATS.chunks += written
        self.done_tick = now_tick
        if self.slots:
            self.loop.call_later(0.001, self.run)
        else:
            self.armed = False

    def write(self, stream: Stream, due_ns: int, now_tick: int) -> int:
        conn = stream.conn
        if conn.closed:
            STATS.streams_aborted += 1
            STATS.active -= 1
            return 0
        sent = now_ns()
        late = sent - due_ns
        STATS.late_max_ns = max(STATS.late_max_ns, late)
        STATS.late_sum_ns += late
        STATS.late_n += 1
        STATS.late_over_5ms += late > 5_000_000
        wire = stream.wire
        conn.transport.write(wire.pre + b"%020d" % sent + wire.post)
        stream.left -= 1
        if stream.left > 0:
            self.add(stream, now_tick + self.gap_ms())
        else:
            conn.transport.write(wire.end)
            STATS.streams_done += 1
            STATS.active -= 1
            conn.finished(stream.close)
        return 1


@dataclass
class Config:
    chunks: int
    wheel: Wheel
    wires: dict[tuple[bool, str, int], Wire] = field(default_factory=dict)

    def wire(self, anthropic: bool, model: str, chunks: int) -> Wire:
        key = (anthropic, model, chunks)
        found = self.wires.get(key)
        if found is None:
            if len(self.wires) > 256:
                self.wires.clear()
            make = anthropic_wire if anthropic else openai_wire
            found = self.wires[key] = make(json.dumps(model), chunks)
        return found


Request = tuple[bytes, bytes, bytes, bool]  # method, target, body, close


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive; a request that arrives during a stream waits for its end."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.buffer = b""
        self.busy = False
        self.waiting: list[Request] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self.parse()) is not None:
            if self.busy or self.waiting:
                self.waiting.append(request)
            else:
                self.dispatch(request)

    def parse(self) -> Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end]
        method, target, version = head.split(b"\r\n", 1)[0].split(b" ", 2)
        lowered = head.lower()
        length = 0
        at = lowered.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lowered.find(b"\r\n", at + 2)
            length = int(lowered[at + 17 : stop if stop >= 0 else len(lowered)])
        start = end + 4
        if len(self.buffer) < start + length:
            return None
        body = self.buffer[start : start + length]
        self.buffer = self.buffer[start + length :]
        close = version == b"HTTP/1.0" or b"\r\nconnection: close" in lowered
        return method, target, body, close

    def dispatch(self, request: Request) -> None:
        method, target, body, close = request
        path, _, query = target.partition(b"?")
        if method == b"POST" and path in STREAM_PATHS:
            self.stream(path == b"/v1/messages", body, close)
        elif method == b"GET" and path == b"/health":
            self.reply(http_reply(b"200 OK", b'"ok"'), close)
        elif method == b"GET" and path == b"/stats":
            self.reply(http_reply(b"200 OK", json.dumps(STATS.as_json()).encode()), close)
            if b"reset=1" in query:
                STATS.reset()
        else:
            self.reply(http_reply(b"404 Not Found", b'{"error":{"message":"not found"}}'), close)

    def stream(self, anthropic: bool, body: bytes, close: bool) -> None:
        try:
            request = json.loads(body)
            chunks = int(request.get("max_tokens") or self.config.chunks)
            model = str(request.get("model", "fake"))
            assert request.get("stream") is True
        except (ValueError, AttributeError, AssertionError):
            error = b'{"error":{"message":"a JSON body with stream: true is served"}}'
            self.reply(http_reply(b"400 Bad Request", error), close)
            return
        self.busy = True
        STATS.streams_started += 1
        STATS.anthropic_streams += anthropic
        STATS.active += 1
        wire = self.config.wire(anthropic, model, max(1, chunks))
        self.transport.write(SSE_HEAD + wire.start)
        self.config.wheel.start(Stream(self, wire, max(1, chunks), close))

    def reply(self, data: bytes, close: bool) -> None:
        self.transport.write(data)
        if close:
            self.transport.close()

    def finished(self, close: bool) -> None:
        if close:
            self.transport.close()
            return
        self.busy = False
        while self.waiting and not self.busy and not self.closed:
            self.dispatch(self.waiting.pop(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--chunks", type=int, default=300, help="when the request has no max_tokens")
    ap.add_argument("--chunk-ms", type=float, default=30.0)
    ap.add_argument("--jitter-ms", type=float, default=10.0)
    args = ap.parse_args()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    config = Config(args.chunks, Wheel(loop, args.chunk_ms, args.jitter_ms))
    server = loop.run_until_complete(
        loop.create_server(lambda: Connection(config), args.host, args.port, backlog=8192)
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, loop.stop)
    gc.collect()
    gc.freeze()  # a full collection over thousands of live streams would stall the wheel
    print(
        f"upstream http://{args.host}:{args.port} chunks={args.chunks} "
        f"chunk_ms={args.chunk_ms}+-{args.jitter_ms} pid={os.getpid()}",
        flush=True,
    )
    try:
        loop.run_forever()
    finally:
        server.close()
        print("upstream stats " + json.dumps(STATS.as_json()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
