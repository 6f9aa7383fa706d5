#!/usr/bin/env python3
"""Hold N concurrent streaming chat requests, time every chunk; print one JSON object.

    load.py --url http://127.0.0.1:18100 -n 1000 [--auth "Authorization: Bearer KEY"]
            [--model gpt-4o-mini] [--protocol openai|anthropic] [--chunks 300] [--ramp 3]
            [--timeout 55] [--gateway-pid PID] [--upstream-pid PID] [--out FILE]

Raw asyncio protocol client (uvloop): one connection per stream ("Connection: close"), the
streams started evenly over --ramp seconds. Each content chunk's text carries
"~ts~<20-digit monotonic_ns at the upstream's send>~" (bench/streams/upstream.py); on every
read the client takes time.monotonic_ns() once and records receive - send for each stamp in it,
into a histogram (10 us buckets up to 100 ms, 10 ms above). A stream is complete when it saw
exactly the requested number of stamps and its end marker ("data: [DONE]", or "message_stop"
for --protocol anthropic) with status 200; every other stream counts as an error.

With --gateway-pid it samples the gateway's process tree from /proc: CPU (utime+stime) before
the first stream and after the last, and VmRSS every --sample-s; the RSS per open stream is the
median RSS of the samples with the most streams open, minus the RSS before, over those streams.
Also: busy and steal of every CPU, the upstream's CPU (--upstream-pid) and the kernel's listen
queue overflows (TcpExt ListenOverflows) during the cell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import uvloop

now_ns = time.monotonic_ns
TICKS = os.sysconf("SC_CLK_TCK")
STAMP = b"~ts~"
STAMP_DIGITS = 20
FINE_NS, FINE_N = 10_000, 10_000  # 10 us buckets up to 100 ms
COARSE_NS, COARSE_N = 10_000_000, 12_000  # then 10 ms buckets up to 120 s


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (FINE_N + COARSE_N + 1)

    def add(self, delay_ns: int) -> None:
        if delay_ns < FINE_N * FINE_NS:
            self.counts[max(0, delay_ns) // FINE_NS] += 1
        else:
            self.counts[min(FINE_N + delay_ns // COARSE_NS, FINE_N + COARSE_N)] += 1

    @staticmethod
    def bucket_ms(index: int) -> float:
        if index < FINE_N:
            return (index + 0.5) * FINE_NS / 1e6
        return (index - FINE_N + 0.5) * COARSE_NS / 1e6

    def percentiles(self, ps: list[float]) -> dict[str, float | None]:
        total = sum(self.counts)
        out: dict[str, float | None] = {f"p{p:g}": None for p in ps}
        if not total:
            return out
        ranks = sorted((max(1, -(-p * total // 100)), p) for p in ps)  # ceiling ranks
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            while ranks and count and seen >= ranks[0][0]:
                out[f"p{ranks.pop(0)[1]:g}"] = round(self.bucket_ms(index), 3)
            if not ranks:
                break
        return out


@dataclass
class Tally:
    """What every stream of the cell added up to."""

    streams: int
    all_ended: asyncio.Event
    open_now: int = 0
    max_open: int = 0
    finished: int = 0
    complete: int = 0
    chunks: int = 0
    reads: int = 0  # reads that carried at least one chunk
    multi_reads: int = 0  # ... several (coalesced on the way)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    delays: Histogram = field(default_factory=Histogram)

    def ended(self) -> None:
        self.finished += 1
        if self.finished == self.streams:
            self.all_ended.set()

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 5:
            self.error_samples.append(sample[:300])


class StreamClient(asyncio.Protocol):
    """One streaming request on its own connection; stamps are timed as they arrive."""

    def __init__(self, request: bytes, end_marker: bytes, want: int, tally: Tally) -> None:
        self.request, self.end_marker, self.want, self.tally = request, end_marker, want, tally
        self.head = b""
        self.status = 0
        self.tail = b""  # an unfinished stamp, or the last bytes (an end marker split by a read)
        self.body_error = b""
        self.received = 0
        self.saw_end = False
        self.ended = False
        self.sent_at = 0
        self.first_at = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.tally.open_now += 1
        self.tally.max_open = max(self.tally.max_open, self.tally.open_now)
        self.sent_at = now_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = now_ns()
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            data, status = self.head[end + 4 :], self.head.split(b" ", 2)[1]
            self.status = int(status) if status.isdigit() else -1
        if self.status != 200:
            self.body_error = (self.body_error + data)[:2000]
            return
        buf = self.tail + data
        before, pos, at = self.received, 0, -1
        delays = self.tally.delays
        while (at := buf.find(STAMP, pos)) >= 0:
            stop = at + 4 + STAMP_DIGITS
            if stop >= len(buf):
                break
            delays.add(now - int(buf[at + 4 : stop]))
            self.received += 1
            pos, at = stop + 1, -1
        if self.received != before:
            self.tally.reads += 1
            self.tally.multi_reads += self.received - before > 1
            self.first_at = self.first_at or now
        self.tail = buf[at:] if at >= 0 else buf[max(pos, len(buf) - 16) :]
        if not self.saw_end and self.end_marker in buf:
            self.saw_end = True
            self.finish()
            # "Connection: close" was asked for: the server closes; do not wait forever
            self.closer = asyncio.get_running_loop().call_later(2.0, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.open_now -= 1
        if self.closer:
            self.closer.cancel()
        self.finish()

    def finish(self, timed_out: bool = False) -> None:
        if self.ended:
            return
        self.ended = True
        tally = self.tally
        tally.ended()
        tally.chunks += self.received
        detail = f"received={self.received} want={self.want} end={self.saw_end}"
        if timed_out:
            tally.error("open_at_deadline", detail)
        elif self.status != 200:
            tally.error(f"http_{self.status}", self.body_error.decode("utf-8", "replace"))
        elif self.saw_end and self.received == self.want:
            tally.complete += 1
        else:
            tally.error("incomplete", f"{detail} tail={self.tail[-200:]!r}")
        if self.first_at:
            tally.ttfb_ms.append((self.first_at - self.sent_at) / 1e6)
        if not self.done.done():
            self.done.set_result(None)


# ---- /proc ------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree_usage(pid: int) -> dict[str, float] | None:
    """CPU seconds and RSS (KB) of `pid` and its descendants."""
    if not pid:
        return None
    cpu = 0.0
    rss = 0
    for each in process_tree(pid):
        try:
            stat = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        cpu += (int(stat[11]) + int(stat[12])) / TICKS
        rss += next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
    return {"cpu_s": cpu, "rss_kb": rss}


CpuTicks = dict[str, tuple[int, int, int]]


def cpu_ticks() -> CpuTicks:
    """Per CPU: total, idle (with iowait) and steal ticks."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            v = [int(x) for x in values[:8]]
            out[name] = (sum(v), v[3] + v[4], v[7])
    return out


def listen_overflows() -> int:
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    for names, values in itertools.pairwise(lines):
        if names[0] == "TcpExt:" and values[0] == "TcpExt:" and "ListenOverflows" in names:
            return int(values[names.index("ListenOverflows")])
    return 0


def cpu_busy(before: CpuTicks, after: CpuTicks) -> dict[str, dict[str, float]]:
    out = {}
    for name, (total, idle, steal) in after.items():
        t0, i0, s0 = before.get(name, (total, idle, steal))
        if total > t0:
            out[name] = {
                "busy_pct": round(100 * (total - t0 - (idle - i0)) / (total - t0), 1),
                "steal_pct": round(100 * (steal - s0) / (total - t0), 2),
            }
    return out


# ---- the cell ---------------------------------------------------------------------------------


def build_request(args: argparse.Namespace) -> tuple[bytes, bytes, str]:
    split = urlsplit(args.url)
    base = split.path.rstrip("/")
    body = {
        "model": args.model,
        "max_tokens": args.chunks,
        "stream": True,
        "messages": [{"role": "user", "content": "Say something long."}],
    }
    if args.protocol == "anthropic":
        path, extra, end_marker = (
            base + "/v1/messages",
            b"anthropic-version: 2023-06-01\r\n",
            b"message_stop",
        )
    else:
        path, extra, end_marker = base + "/v1/chat/completions", b"", b"data: [DONE]"
        body["stream_options"] = {"include_usage": True}
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = b"".join(h.encode() + b"\r\n" for h in args.auth or [] if h)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {split.netloc}\r\nContent-Type: application/json\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n".encode()
        + headers + extra + b"Content-Length: %d\r\n\r\n" % len(payload) + payload
    )  # fmt: skip
    return request, end_marker, path


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    split = urlsplit(args.url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    request, end_marker, path = build_request(args)
    tally = Tally(args.n, asyncio.Event())
    clients: list[StreamClient] = []
    rss_samples: list[tuple[int, float]] = []  # (open streams, gateway RSS KB)

    async def one() -> None:
        client = StreamClient(request, end_marker, args.chunks, tally)
        clients.append(client)
        try:
            await loop.create_connection(lambda: client, host, port)
        except OSError as exc:
            tally.error("connect_" + type(exc).__name__, repr(exc))
            client.ended = True
            tally.ended()
            return
        await client.done

    async def sample() -> None:
        while True:
            await asyncio.sleep(args.sample_s)
            usage = tree_usage(args.gateway_pid)
            if usage:
                rss_samples.append((tally.open_now, usage["rss_kb"]))

    gateway0, upstream0 = tree_usage(args.gateway_pid), tree_usage(args.upstream_pid)
    cpus0, overflows0, t0 = cpu_ticks(), listen_overflows(), time.monotonic()
    step = args.ramp / args.n if args.n > 1 else 0.0
    tasks: list[asyncio.Task[None]] = []
    for i in range(args.n):
        loop.call_at(loop.time() + i * step, lambda: tasks.append(asyncio.ensure_future(one())))
    sampler = asyncio.ensure_future(sample())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.all_ended.wait(), args.timeout)
    timed_out = tally.finished < args.n
    for client in clients:
        if not client.ended:
            client.finish(timed_out=True)
            client.transport.abort()
    sampler.cancel()
    t1 = time.monotonic()
    gateway1, upstream1 = tree_usage(args.gateway_pid), tree_usage(args.upstream_pid)
    cpus1, overflows1 = cpu_ticks(), listen_overflows()
    for task in tasks:
        task.cancel()

    ttfb = sorted(tally.ttfb_ms)
    out: dict[str, Any] = {
        "n": args.n,
        "chunks_per_stream": args.chunks,
        "protocol": args.protocol,
        "path": path,
        "model": args.model,
        "ramp_s": args.ramp,
        "wall_s": round(t1 - t0, 3),
        "timed_out": timed_out,
        "max_open": tally.max_open,
        "complete": tally.complete,
        "errors": args.n - tally.complete,
        "error_kinds": tally.errors,
        "error_samples": tally.error_samples,
        "chunks_received": tally.chunks,
        "delay_ms": tally.delays.percentiles([50, 90, 99, 99.9, 100]),
        "ttfb_ms": {
            "p50": round(statistics.median(ttfb), 3) if ttfb else None,
            "max": round(ttfb[-1], 3) if ttfb else None,
        },
        "reads_with_chunks": tally.reads,
        "reads_with_several_chunks": tally.multi_reads,
        "cpu": cpu_busy(cpus0, cpus1),
        "listen_overflows": overflows1 - overflows0,
        "loadgen_cpu_s": round(sum(os.times()[:2]), 3),
    }
    if upstream0 and upstream1:
        out["upstream_cpu_s"] = round(upstream1["cpu_s"] - upstream0["cpu_s"], 3)
    if gateway0 and gateway1:
        cpu_s = gateway1["cpu_s"] - gateway0["cpu_s"]
        gateway: dict[str, Any] = {
            "cpu_s": round(cpu_s, 3),
            "cpu_pct": round(100 * cpu_s / (t1 - t0), 1),
            "cpu_us_per_chunk": round(1e6 * cpu_s / tally.chunks, 2) if tally.chunks else None,
            "rss_idle_kb": gateway0["rss_kb"],
        }
        if rss_samples:
            most = max(opened for opened, _ in rss_samples)
            plateau = statistics.median(rss for opened, rss in rss_samples if opened >= 0.98 * most)
            gateway |= {
                "plateau_open": most,
                "rss_plateau_kb": plateau,
                "rss_peak_kb": max(rss for _, rss in rss_samples),
                "rss_kb_per_stream": round((plateau - gateway0["rss_kb"]) / most, 2)
                if most
                else None,
            }
        out["gateway"] = gateway
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url", required=True, help="the server's base URL, without /v1")
    ap.add_argument("-n", type=int, default=100, help="concurrent streams")
    ap.add_argument("--auth", action="append", help="a header line, e.g. 'x-api-key: k'")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--protocol", choices=["openai", "anthropic"], default="openai")
    ap.add_argument("--chunks", type=int, default=300, help="content chunks per stream")
    ap.add_argument("--ramp", type=float, default=3.0, help="seconds over which streams start")
    ap.add_argument("--timeout", type=float, default=55.0, help="the cell's hard deadline (s)")
    ap.add_argument("--sample-s", type=float, default=0.5)
    ap.add_argument("--gateway-pid", type=int, default=0)
    ap.add_argument("--upstream-pid", type=int, default=0)
    ap.add_argument("--out", default="-")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.n + 256:  # one socket per stream
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.n + 256), hard))
    gc.collect()
    gc.freeze()
    gc.disable()  # the clients make no cycles; a collection would delay every read behind it
    out = uvloop.run(run(args))
    text = json.dumps(out)
    if args.out == "-":
        print(text)
        return
    Path(args.out).write_text(text + "\n")
    brief = {k: out.get(k) for k in ("n", "wall_s", "complete", "errors", "delay_ms", "gateway")}
    print(json.dumps(brief), file=sys.stderr)


if __name__ == "__main__":
    main()
