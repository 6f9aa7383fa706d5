"""Loopback servers for synchronous tests: an event loop on a thread of its own, and an aiohttp
app listening on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on a daemon thread, started by the first `run`."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10) -> T:
        """Run `coro` on the thread's loop and wait for its result."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def stop(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1 at a free port: its runner (to clean up) and the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


class ServedApp:
    """A fake server's lifecycle: the aiohttp app `app()` makes, on its own loop thread, at a
    free 127.0.0.1 port (`url`). Subclasses build the app and may release what they hold
    before `stop` (a held stream) by extending it."""

    def __init__(self) -> None:
        self._thread = LoopThread()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> Self:
        self._runner, self.port = self._thread.run(serve_app(self.app()))
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._thread.run(self._runner.cleanup())
            self._runner = None
        self._thread.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
