"""The NDJSON export through HTTP: a real `modelgate serve` streams a 1,000,000-row request
log on GET /admin/api/requests while this script reads it incrementally, and the gateway's
memory is sampled (VmRSS of the gateway and its worker processes, every 50 ms).

    ./dev python bench/export_rss.py                  # 1,000,000 rows, 3 runs (target: < 50 MB)
    ./dev python bench/export_rss.py --rows 100000 --runs 1

The log is bench/plan_replay.py's synthetic week, ending now (the gateway deletes rows past
its retention at start), written to the state directory before the gateway starts. Each run
starts a fresh gateway, waits until it is ready and idle, samples its RSS for a second
(idle), then streams the export and keeps sampling until the last byte (peak). Reported per
run: idle and peak RSS, the rise, rows and bytes received, seconds; then the median and
min-max of the rise over the runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from dulwich import porcelain
from dulwich.repo import Repo

from gateway.usage.request_log import DEFAULT_FILE

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package
from plan_replay import WEEK_S, write_log

AUTHOR = b"ModelGate bench <bench@localhost>"
SAMPLE_S = 0.05


def policy_repo(path: Path, admin_token: str) -> None:
    """A policy with the routes the synthetic rows name and one admin token."""
    digest = hashlib.sha256(admin_token.encode()).hexdigest()
    files = {
        "providers.yaml": "providers:\n  openai: {type: openai, "
        'base_url: "https://api.openai.com/v1", credentials: []}\n',
        "routes.yaml": "routes:\n  gpt-4o-mini: {targets: [openai/gpt-4o-mini]}\n",
        "keys.yaml": f'keys: []\nadmins:\n  - {{id: bench-admin, hash: "sha256:{digest}"}}\n',
    }
    path.mkdir(parents=True)
    with Repo.init(str(path), default_branch=b"main") as repo:
        for name, text in files.items():
            (path / name).write_text(text)
        porcelain.add(repo, [str(path / name) for name in files])
        porcelain.commit(repo, message=b"export bench policy", author=AUTHOR, committer=AUTHOR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and its descendants (Sanic serves from a worker process)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(child) for child in children]
    return total


class Sampler(threading.Thread):
    """The process tree's RSS every 50 ms until stopped: the peak and the samples' count."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.samples = pid, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            self.samples += 1
            self.done.wait(SAMPLE_S)

    def stop(self) -> int:
        self.done.set()
        self.join()
        self.peak = max(self.peak, tree_rss_kib(self.pid))
        return self.peak


def start_gateway(repo: Path, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateway.cli", "serve", "--policy-repo", str(repo)]
    command += ["--state-dir", str(state), "--port", str(port), "--log-level", "warning"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the gateway did not become ready:\n{log.read_text()[-2000:]}")


def one_run(repo: Path, state: Path, token: str, expected: int) -> dict[str, float]:
    port = free_port()
    proc = start_gateway(repo, state, port, state / "gateway.log")
    try:
        time.sleep(1.0)  # let start-up work (retention sweep, first policy load) settle
        idle = Sampler(proc.pid)
        idle.start()
        time.sleep(1.0)
        idle_kib = idle.stop()
        sampler = Sampler(proc.pid)
        sampler.start()
        start = time.perf_counter()
        rows = received = 0
        headers = {"authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/admin/api/requests"
        with (
            httpx.Client(timeout=120) as client,
            client.stream("GET", url, params={"since": "0"}, headers=headers) as got,
        ):
            got.raise_for_status()
            for chunk in got.iter_raw():  # incrementally: never the whole body
                received += len(chunk)
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - start
        peak_kib = sampler.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    if rows != expected:
        raise SystemExit(f"received {rows:,} rows, expected {expected:,}")
    result = {
        "idle_mb": idle_kib / 1024,
        "peak_mb": peak_kib / 1024,
        "rise_mb": (peak_kib - idle_kib) / 1024,
        "rows": rows,
        "mb": received / 1e6,
        "seconds": seconds,
        "samples": sampler.samples,
    }
    print(
        f"export over HTTP: {rows:,} rows, {result['mb']:,.0f} MB in {seconds:.1f} s; gateway RSS "
        f"idle {result['idle_mb']:.1f} MB, peak {result['peak_mb']:.1f} MB, "
        f"rise {result['rise_mb']:.1f} MB ({sampler.samples} samples)",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    token = "mg-admin-" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="modelgate-export-bench-") as tmp:
        repo, state = Path(tmp) / "policy", Path(tmp) / "state"
        policy_repo(repo, token)
        state.mkdir()
        write_log(state / DEFAULT_FILE, args.rows, start=time.time() - WEEK_S - 60)
        print(f"log: {args.rows:,} rows, {os.path.getsize(state / DEFAULT_FILE) / 1e6:,.0f} MB")
        runs = [one_run(repo, state, token, args.rows) for _ in range(args.runs)]
    for name in ("rise_mb", "peak_mb", "idle_mb", "seconds"):
        values = sorted(run[name] for run in runs)
        print(
            f"{name}: median {statistics.median(values):.1f} "
            f"(min {values[0]:.1f}, max {values[-1]:.1f}) over {len(values)} runs"
        )


if __name__ == "__main__":
    main()
