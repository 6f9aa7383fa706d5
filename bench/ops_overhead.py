"""What the operations surface costs the request path: 3 live-event viewers and a metrics
scraper connected, against the same gateway with nobody watching.

Starts bench/fake_upstream.py (CPU 1) and `modelgate serve` (CPU 0) on loopback, then runs
wrk (CPU 1) through the gateway, interleaving the two scenarios so drift hits both alike:
  plain     nobody watching (the access log and request log are on in both)
  observed  3 viewers reading /admin/api/events and /metrics scraped every second
For each cell: requests/s, p50/p99 latency, gateway CPU per request (utime+stime of the
gateway process over the run). Target: observed within 10% of plain.

    ./dev python bench/ops_overhead.py [--duration 5] [--repeats 3] [--conns 1 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLIENT_KEY = "mg-bench-client-0123456789abcdefghijklmnopqrstuv"
ADMIN_TOKEN = "mg-bench-admin-0123456789abcdefghijklmnopqrstuvw"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _sha(secret: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_policy(repo: Path, upstream_port: int) -> None:
    repo.mkdir(parents=True)
    files = {
        "providers.yaml": f"providers:\n  fake:\n    type: openai-compatible\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n    credentials: []\n",
        "routes.yaml": "routes:\n  gpt-4o-mini:\n    targets: [fake/gpt-4o-mini]\n",
        "limits.yaml": "default: {}\ntiers: {}\n",
        "keys.yaml": f"keys:\n  - id: bench\n    hash: {_sha(CLIENT_KEY)}\n"
        f"admins:\n  - id: ops\n    hash: {_sha(ADMIN_TOKEN)}\n",
    }
    for name, text in files.items():
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=b@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench policy"], check=True)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Observers:
    """3 SSE viewers and a 1 s metrics scraper, on threads of this (CPU 1) process."""

    url: str
    events: list[int] = field(default_factory=lambda: [0, 0, 0])
    scrapes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Observers:
        for n in range(3):
            self._threads.append(threading.Thread(target=self._view, args=(n,), daemon=True))
        self._threads.append(threading.Thread(target=self._scrape, daemon=True))
        for thread in self._threads:
            thread.start()
        time.sleep(0.3)
        return self

    def _view(self, n: int) -> None:
        """A raw-socket SSE reader: counting frames costs this core (shared with wrk and
        the upstream) next to nothing, so only the gateway's side of viewing is measured."""
        host, port = self.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"GET /admin/api/events HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
            )
            sock.settimeout(1.0)
            while not self._stop.is_set():
                try:
                    data = sock.recv(1 << 20)
                except TimeoutError:
                    continue
                if not data:
                    return
                self.events[n] += data.count(b"\nevent: request\n")

    def _scrape(self) -> None:
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(1.0):
                client.get(self.url + "/metrics", headers=headers).raise_for_status()
                self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


_LAT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, script: Path, conns: int, duration: float) -> dict[str, float]:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{round(duration)}s", "--latency"]
    out = subprocess.run(
        [*cmd, "-s", str(script), url + "/v1/chat/completions"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    lat = {p: float(v) * _UNIT_MS[u] for p, v, u in _LAT.findall(out)}
    rps = _RPS.search(out)
    total = _TOTAL.search(out)
    assert rps and total, out
    return {
        "rps": float(rps.group(1)),
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "requests": float(total.group(1)),
    }


def lua_script(directory: Path, stream: bool) -> Path:
    body = json.dumps({**BODY, "stream": stream})
    path = directory / f"chat_{'stream' if stream else 'plain'}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {CLIENT_KEY}"\n'
        f"wrk.body = '{body}'\n"
    )
    return path


def micro(count: int = 100_000) -> None:
    """Recorder.record() alone, in this process: microseconds per call, 0 and 3 viewers."""
    import asyncio

    from gateway.errors import Protocol
    from gateway.logs import configure_logging
    from gateway.metrics import GatewayMetrics
    from gateway.request.exchange import Exchange
    from gateway.usage.events import EventBus
    from gateway.usage.recorder import Recorder
    from gateway.usage.request_log import RequestLog
    from gateway.usage.traffic import Traffic
    from policies.reload import PolicyHolder

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the access log goes nowhere here
    configure_logging("info", "text")

    async def run(viewers: int) -> float:
        traffic, bus = Traffic(), EventBus()
        log = RequestLog(Path(tempfile.mkdtemp()) / "r.sqlite3", 30)
        recorder = Recorder(PolicyHolder(), bus, traffic, GatewayMetrics(traffic), log)
        subs = [bus.subscribe() for _ in range(viewers)]
        elapsed = 0.0
        for n in range(count):
            ex = Exchange(f"req-{n}", Protocol.OPENAI, time.perf_counter(), time.time())
            ex.key_id, ex.model, ex.provider, ex.target = "k", "m", "p", "p/m"
            ex.ttfb_ms = 1.0
            ex.usage.prompt_tokens, ex.usage.completion_tokens = 11, 7
            started = time.perf_counter()
            recorder.record(ex)
            elapsed += time.perf_counter() - started
            if n % 500 == 0:  # what the viewers' stream tasks and the log flusher do
                for sub in subs:
                    sub.take()
                log._pending.clear()
        return elapsed / count * 1e6

    for viewers in (0, 3):
        per_call = asyncio.run(run(viewers))
        print(f"record(): {per_call:.2f} us per call with {viewers} viewers", file=sys.__stdout__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--micro", action="store_true", help="time Recorder.record() alone")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conns", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--modes", nargs="+", default=["nonstream", "stream"])
    args = parser.parse_args()
    if args.micro:
        micro()
        return 0
    if not shutil.which("wrk"):
        print("needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="ops-bench-"))
    up_port, gw_port = free_port(), free_port()
    make_policy(work / "policy", up_port)
    upstream = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, str(ROOT / "bench/fake_upstream.py"),
         "--port", str(up_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    log = (work / "gateway.log").open("wb")
    gateway = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "gateway.cli", "serve",
         "--policy-repo", str(work / "policy"), "--state-dir", str(work / "state"),
         "--port", str(gw_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{gw_port}"
    results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    try:
        wait_http(f"http://127.0.0.1:{up_port}/health")
        wait_http(url + "/readyz")
        scripts = {m: lua_script(work, m == "stream") for m in args.modes}
        for mode in args.modes:  # warm-up, unrecorded
            run_wrk(url, scripts[mode], max(args.conns), 2)
        for rep in range(args.repeats):
            for scenario in ("plain", "observed") if rep % 2 == 0 else ("observed", "plain"):
                observers = Observers(url).start() if scenario == "observed" else None
                for mode in args.modes:
                    for conns in args.conns:
                        cpu0 = cpu_seconds(gateway.pid)
                        cell = run_wrk(url, scripts[mode], conns, args.duration)
                        cell["cpu_us_per_req"] = (
                            (cpu_seconds(gateway.pid) - cpu0) / cell["requests"] * 1e6
                        )
                        results.setdefault((scenario, mode, conns), []).append(cell)
                if observers is not None:
                    observers.stop()
                    print(
                        f"  rep {rep + 1}: viewers received {observers.events} events, "
                        f"{observers.scrapes} scrapes",
                        flush=True,
                    )
    finally:
        gateway.terminate()
        gateway.wait(30)
        upstream.terminate()
        upstream.wait(10)
    print_table(results, args)
    return 0


def print_table(results: dict[tuple[str, str, int], list[dict[str, float]]], args: object) -> None:
    def med(key: tuple[str, str, int], field: str) -> float:
        return statistics.median(cell[field] for cell in results[key])

    print(f"\nmedian of {getattr(args, 'repeats', '?')} runs x {getattr(args, 'duration', '?')} s")
    print(
        "| mode | conns | plain rps | observed rps | plain p50 ms | observed p50 ms "
        "| plain p99 ms | observed p99 ms | plain CPU us/req | observed CPU us/req | CPU ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode in getattr(args, "modes", []):
        for conns in getattr(args, "conns", []):
            p, o = ("plain", mode, conns), ("observed", mode, conns)
            ratio = med(o, "cpu_us_per_req") / med(p, "cpu_us_per_req")
            print(
                f"| {mode} | {conns} | {med(p, 'rps'):.0f} | {med(o, 'rps'):.0f} "
                f"| {med(p, 'p50_ms'):.3f} | {med(o, 'p50_ms'):.3f} "
                f"| {med(p, 'p99_ms'):.3f} | {med(o, 'p99_ms'):.3f} "
                f"| {med(p, 'cpu_us_per_req'):.0f} | {med(o, 'cpu_us_per_req'):.0f} "
                f"| {ratio:.3f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
