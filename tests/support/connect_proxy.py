"""A loopback HTTP proxy that opens CONNECT tunnels, for tests of upstream egress proxies."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field

from tests.support.loop_thread import LoopThread


@dataclass
class ConnectProxy:
    """A loopback proxy that opens CONNECT tunnels (and demands a password if given one)."""

    password: str | None = None
    tunnels: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, auth: str = "") -> str:
        return f"http://{auth}127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
        if self.password is not None:
            wanted = "Basic " + base64.b64encode(f"ops:{self.password}".encode()).decode()
            if f"Proxy-Authorization: {wanted}" not in head:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                writer.close()
                return
        assert method == "CONNECT"
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipes = [self._pipe(reader, up_writer), self._pipe(up_reader, writer)]
        tasks = [asyncio.create_task(pipe) for pipe in pipes]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()


class ProxyThread:
    """A ConnectProxy on its own event loop and thread, for synchronous tests."""

    def __init__(self, password: str | None = None) -> None:
        self.proxy = ConnectProxy(password=password)
        self._thread = LoopThread()

    def __enter__(self) -> ConnectProxy:
        self._thread.run(self.proxy.start())
        return self.proxy

    def __exit__(self, *_: object) -> None:
        self._thread.run(self.proxy.stop())
        self._thread.stop()
