"""`modelgate serve` as a real subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import httpx

FAKE_UPSTREAM_KEY = "fake-upstream-credential-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    def __init__(
        self,
        repo: Path,
        state_dir: Path,
        *extra_args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.repo = repo
        self.state_dir = state_dir
        self.extra_args = extra_args
        self._port_chosen = port is None
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "FAKE_UPSTREAM_KEY": FAKE_UPSTREAM_KEY,
            # No load balancer watches a test's gateway: stopping it need not wait the 5 s
            # a real one is given to notice /readyz (the drain tests set their own).
            "MG_DRAIN_GRACE": "0",
            **(env or {}),
        }
        self.log_path = state_dir / f"gateway-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> GatewayProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            with self.log_path.open("ab") as log:
                self._log_start = log.tell()
                self.proc = self._spawn(log)
            try:
                return self._wait(wait_ready)
            except RuntimeError:
                # Another test's process may bind a chosen port between its choice and this
                # bind: choose again (a port the test named is its own business).
                taken = "Address already in use" in self.logs()[self._log_start :]
                if not (self._port_chosen and taken) or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _spawn(self, log: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--policy-repo",
                str(self.repo),
                "--state-dir",
                str(self.state_dir),
                "--port",
                str(self.port),
                "--poll-interval",
                "0.1",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def _wait(self, wait_ready: bool) -> GatewayProcess:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.logs()}")
            try:
                response = httpx.get(f"{self.url}/readyz" if wait_ready else f"{self.url}/healthz")
                if response.status_code == 200 and self._all_workers_ready():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not become ready:\n{self.logs()}")

    def _all_workers_ready(self) -> bool:
        """/readyz answers once one worker serves; with --workers N wait for all N, so that
        tests reach every worker and a SIGTERM never lands on a worker still starting (Sanic
        then waits out its 15 s graceful shutdown timeout)."""
        args = list(self.extra_args)
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        if workers == 1:
            return True
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().count(b"Worker ready") >= workers

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server and its worker processes (which would outlive it otherwise)."""
        if self.proc and self.proc.poll() is None:
            for pid in _descendants(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(5)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _descendants(pid: int) -> list[int]:
    """Child processes, their children and so on (Linux /proc)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            found += [int(c) for c in children]
            todo += [int(c) for c in children]
    return found
