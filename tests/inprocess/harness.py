"""The gateway's real Sanic server, started inside the test's own event loop.

`create_app` gets the scripted upstream as its transport and a FakeClock as its clock, and
serves on an ephemeral 127.0.0.1 port with the protocol `modelgate serve` uses
(FrontDoorProtocol). Clients are httpx clients in the same loop, so a request costs about a
millisecond and a test can read or advance the gateway's state between two requests.

Why a loopback socket and not ASGI: the gateway reads request bodies through Sanic's HTTP/1.1
connection (streaming routes, gateway/front_door.py) and streams answers with
`request.respond`; under ASGI those paths are different code, and httpx's ASGI transport
buffers a whole response, so streams could not be read as they go.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from sanic.application.constants import ServerStage
from sanic.application.state import ApplicationServerInfo
from sanic.server.async_server import AsyncioServer

from gateway.app import AppType, create_app
from gateway.front_door import FrontDoorProtocol
from gateway.settings import Settings
from gateway.state import AppState
from tests.inprocess.upstream import ScriptedUpstream
from tests.support.fake_clock import FakeClock

_names = itertools.count()

NO_POLL_S = 3600.0
"""The watcher's poll interval: tests apply a commit with `reload()`, never by waiting."""


def settings_for(policy_repo: Path, state_dir: Path, credentials_dir: Path) -> Settings:
    return Settings(
        policy_repo=policy_repo,
        state_dir=state_dir,
        credentials_dir=credentials_dir,
        poll_interval=NO_POLL_S,
        log_level="warning",
    )


class InProcessGateway:
    """A started gateway: `client` speaks to it, `state` is its worker state."""

    def __init__(self, settings: Settings, upstream: ScriptedUpstream, clock: FakeClock) -> None:
        self.settings, self.upstream, self.clock = settings, upstream, clock
        self.app: AppType = create_app(
            settings, name=f"inprocess{next(_names)}", transport=upstream, clock=clock
        )
        # Sanic's touchup rewrites its protocol classes' code once per process, for one app;
        # a second app would rewrite the rewritten code. It only drops unused branches.
        self.app.config.TOUCHUP = False
        self._server: AsyncioServer | None = None
        self.client: httpx.AsyncClient
        """Speaks to the gateway; made by `start`."""

    @property
    def state(self) -> AppState:
        return self.app.ctx.state

    async def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = await self.app.create_server(
            sock=sock, protocol=FrontDoorProtocol, access_log=False, return_asyncio_server=True
        )
        assert server is not None
        self._server = server  # accepting already; no client knows the port until we return
        await server.startup()  # type: ignore[no-untyped-call]
        # What Sanic's own runner records: the app is serving (`app.add_task` needs it).
        self.app.state.server_info.append(ApplicationServerInfo({}, ServerStage.SERVING, server))
        await server.before_start()  # type: ignore[no-untyped-call]
        await server.after_start()  # type: ignore[no-untyped-call]
        # Plain HTTP on loopback: verify=False spares loading the CA bundle (20 ms a client).
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=5, verify=False
        )
        return self

    async def reload(self) -> bool:
        """Apply the ref's new commit now (what the watcher's next poll would do)."""
        return await self.state.watcher.check_now()

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        await self.client.aclose()
        await server.before_stop()  # type: ignore[no-untyped-call]
        closed = server.close()  # type: ignore[no-untyped-call]
        for connection in list(server.connections):
            connection.close_if_idle()
        if closed is not None:
            await closed
        tasks = [task for task in self.app.tasks if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.app.purge_tasks()
        await server.after_stop()  # type: ignore[no-untyped-call]
        for info in self.app.state.server_info:
            info.stage = ServerStage.STOPPED

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
