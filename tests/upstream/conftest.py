"""Event loops for the upstream tests: a module that names loop factories runs on uvloop too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest
import uvloop

from gateway.upstream.transport import create_http_client
from tests.upstream.raw_server import Upstream, answer_json, answer_length


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Both loops for tests marked `asyncio(loop_factories=[...])` (the gateway serves on
    uvloop, whose transports differ from asyncio's); asyncio's alone for the rest."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "loop_factories" in marker.kwargs:
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream(routes={"/json": answer_json, "/length": answer_length}).start()
    yield server
    await server.stop()
    assert not server.errors, "a handler failed (see the log)"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with create_http_client() as http:
        yield http
