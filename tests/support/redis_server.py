"""A throwaway redis-server on a free 127.0.0.1 port, for tests of any group.

    with running_redis_server(tmp_path) as server:
        limiter = RedisLimiter(server.url, ...)
        server.stop(); ...; server.start()   # same port again: "Redis went away and came back"

Nothing is persisted (--save '', --appendonly no): a restart comes back empty.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.gateway_process import free_port


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RuntimeError(
            "redis-server is not installed; run `./dev just system-deps` "
            "(or apt-get install -y redis-server)"
        )
    return path


class RedisServer:
    """One redis-server process; `start` and `stop` may be repeated (same port)."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start and wait until it answers. A first start retries on another port if the
        free port was taken meanwhile; a restart keeps its port."""
        for attempt in range(3 if not self._started else 1):
            if attempt:
                self.port = free_port()
            if self._start_once(timeout_s):
                self._started = True
                return self
        raise RuntimeError(f"redis-server exited; see {self.directory / 'redis.log'}")

    def _start_once(self, timeout_s: float) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_path(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        log = (self.directory / "redis.log").open("ab")
        with log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not self.ping():
            if self.process.poll() is not None:
                self.process = None
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def ping(self) -> bool:
        """True when the server answers PING (raw RESP; no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    if not sock.recv(64).startswith(b"+OK"):
                        return False
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@contextmanager
def running_redis_server(directory: Path, *, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(directory, password=password).start()
    try:
        yield server
    finally:
        server.stop()
