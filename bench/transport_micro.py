#!/usr/bin/env python3
"""Client-side CPU per upstream request for each candidate HTTP engine.

The fake upstream runs in its own process pinned to --upstream-cpu; this process (the client,
uvloop) pins itself to --client-cpu and measures its own CPU time (user+system) per request,
the way the gateway's executors use the client: build_request, send(stream=True), aiter_raw,
aclose. Candidates: httpx's default transport, httpx-aiohttp's AiohttpTransport, ours
(gateway.upstream.http1's engine under a stock httpx.AsyncClient, "ours-transport", and under
the gateway's UpstreamClient, "ours"), and raw aiohttp without httpx as a reference floor.

    ./dev python bench/transport_micro.py [--requests 3000] [--repeats 3] [--conns 1,32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import httpx
import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gateway.upstream.transport import Http1Transport, create_http_client  # noqa: E402

BODY = {
    "nonstream": b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}',
    "stream": b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],'
    b'"stream":true,"stream_options":{"include_usage":true}}',
}
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-upstream-bench"}
# The executors' per-request timeouts (provider timeout_s and connect_timeout_s).
TIMEOUT = httpx.Timeout(300, connect=10)
CANDIDATES = ("httpx-default", "httpx-aiohttp", "ours-transport", "ours", "aiohttp")
Cell = tuple[str, str, int]  # candidate, mode, connections

OneRequest = Callable[[bytes], Awaitable[int]]


async def make_candidate(name: str, url: str, stack: AsyncExitStack) -> OneRequest:
    """An async function doing one request and returning the body size."""
    if name == "aiohttp":
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=300),
        )
        await stack.enter_async_context(session)

        async def raw(body: bytes) -> int:
            n = 0
            async with session.post(url, data=body, headers=HEADERS) as response:
                while chunk := await response.content.readany():
                    n += len(chunk)
            return n

        return raw

    if name == "httpx-default":
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(None, connect=10))
    elif name == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport as HttpxAiohttpTransport

        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        client = httpx.AsyncClient(
            transport=HttpxAiohttpTransport(limits=limits), timeout=httpx.Timeout(None, connect=10)
        )
    elif name == "ours-transport":
        # Our transport under a stock httpx.AsyncClient: what the client subclass saves.
        client = httpx.AsyncClient(transport=Http1Transport(), timeout=httpx.Timeout(None))
    elif name == "ours":
        client = create_http_client()
    else:
        raise SystemExit(f"unknown candidate {name}")
    await stack.enter_async_context(client)

    async def via_httpx(body: bytes) -> int:
        request = client.build_request("POST", url, content=body, headers=HEADERS, timeout=TIMEOUT)
        response = await client.send(request, stream=True)
        n = 0
        try:
            async for chunk in response.aiter_raw():
                n += len(chunk)
        finally:
            await response.aclose()
        return n

    return via_httpx


async def drive(one: OneRequest, body: bytes, conns: int, total: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for `total` requests at `conns` concurrency."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one(body)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return time.process_time() - cpu0, time.perf_counter() - wall0


async def measure(
    args: argparse.Namespace, url: str
) -> tuple[dict[Cell, list[float]], dict[Cell, list[float]]]:
    """Per cell: client CPU ms per request, and requests per second, one value per repeat."""
    cpu_ms: dict[Cell, list[float]] = {}
    rps: dict[Cell, list[float]] = {}
    for rep in range(args.repeats):
        # Interleave candidates within each repeat so machine drift hits all alike.
        for name in args.candidates:
            async with AsyncExitStack() as stack:
                one = await make_candidate(name, url, stack)
                for mode in args.modes:
                    body = BODY[mode]
                    size = await one(body)
                    if size < 200:
                        raise SystemExit(f"{name} {mode}: short body ({size} bytes)")
                    for conns in args.conns:
                        await drive(one, body, conns, args.warmup)
                        cpu, wall = await drive(one, body, conns, args.requests)
                        cell = (name, mode, conns)
                        cpu_ms.setdefault(cell, []).append(1000 * cpu / args.requests)
                        rps.setdefault(cell, []).append(args.requests / wall)
                        print(
                            f"  r{rep + 1} {name:14s} {mode:9s} c={conns:<3d} "
                            f"{cpu_ms[cell][-1]:6.3f} ms CPU/req  {rps[cell][-1]:8.0f} req/s",
                            flush=True,
                        )
    return cpu_ms, rps


def table(args: argparse.Namespace, values: dict[Cell, list[float]], unit: str, digits: int) -> str:
    def cell(vals: list[float]) -> str:
        med = statistics.median(vals)
        return f"{med:.{digits}f} ({min(vals):.{digits}f}-{max(vals):.{digits}f})"

    cols = [(mode, c) for mode in args.modes for c in args.conns]
    lines = [
        "| candidate | " + " | ".join(f"{m} c={c} {unit}" for m, c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name in args.candidates:
        row = [cell(values[(name, m, c)]) for m, c in cols]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def start_upstream(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(args.port)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(args.upstream_cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/health", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("fake upstream did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=3000, help="measured requests per cell")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--conns", default="1,32")
    ap.add_argument("--modes", default="nonstream,stream")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--upstream-cpu", type=int, default=1)
    args = ap.parse_args()
    args.conns = [int(c) for c in args.conns.split(",")]
    args.modes = args.modes.split(",")
    args.candidates = args.candidates.split(",")

    os.sched_setaffinity(0, {args.client_cpu})
    upstream = start_upstream(args)
    try:
        url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
        print(
            f"client on CPU {args.client_cpu} (uvloop), upstream on CPU {args.upstream_cpu}; "
            f"{args.requests} requests per cell, {args.repeats} repeats",
            flush=True,
        )
        cpu_ms, rps = uvloop.run(measure(args, url))
    finally:
        upstream.terminate()
        upstream.wait()
    print(f"\nmedian (min-max) of {args.repeats} repeats x {args.requests} requests\n")
    print(table(args, cpu_ms, "ms CPU/req", 3))
    print()
    print(table(args, rps, "req/s", 0))


if __name__ == "__main__":
    main()
