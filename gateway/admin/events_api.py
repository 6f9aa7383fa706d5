"""GET /admin/api/events: finished requests as Server-Sent Events.

Each request event has an `id:`; `Last-Event-ID` (or `?since=ID`) replays what the ring still
keeps after that id, with a `gap` event first when some of it is gone. Comments every
heartbeat keep proxies from closing an idle stream. Sends are coalesced (at most one write
per COALESCE_S per viewer, however busy the gateway) and bounded in time: a viewer that
falls `viewer_backlog` events behind, or whose socket takes no data for SEND_TIMEOUT_S, is
dropped, with a final `dropped` event saying why when it can still be delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from gateway.admin.common import commit_of, refused, state_of
from gateway.errors import BadRequest, Protocol
from gateway.responses import SSE_HEADERS, base_headers, error_response, request_id_of
from gateway.usage.events import SHUTTING_DOWN, Published, Replay, Subscription

log = logging.getLogger("modelgate.admin")

COALESCE_S = 0.05
SEND_TIMEOUT_S = 10.0
SOCKET_BUFFER = 32 * 1024
"""Kernel and transport buffering per viewer: small, so a stalled viewer shows up early."""
STUCK = f"the viewer took no data for {SEND_TIMEOUT_S:g} s"
HEARTBEAT = b": keep-alive\n\n"


def _frame(event: str, data: dict[str, object]) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (event.encode(), orjson.dumps(data))


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.args.get("since")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(
            "Last-Event-ID (or ?since=) must be the id of an event this stream sent.",
            param="since",
        ) from None


def _small_buffers(request: Request) -> None:
    transport: Any = request.transport
    with contextlib.suppress(AttributeError, OSError, NotImplementedError):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        transport.set_write_buffer_limits(high=SOCKET_BUFFER)


class _Viewer:
    """One connected viewer's stream."""

    def __init__(self, response: HTTPResponse, sub: Subscription) -> None:
        self.response, self.sub = response, sub
        self.last_sent = 0

    async def send(self, data: bytes, timeout_s: float = SEND_TIMEOUT_S) -> None:
        async with asyncio.timeout(timeout_s):
            await self.response.send(data)

    async def send_items(self, items: list[Published]) -> None:
        fresh = [item for item in items if item.id > self.last_sent]
        if fresh:
            await self.send(b"".join(item.wire() for item in fresh))
            self.last_sent = fresh[-1].id

    async def replay(self, replay: Replay) -> None:
        if replay.missed:
            oldest = replay.items[0].id if replay.items else None
            reason = "some events after your Last-Event-ID are no longer kept"
            await self.send(_frame("gap", {"reason": reason, "oldest_kept": oldest}))
        await self.send_items(replay.items)

    async def pump(self, heartbeat_s: float) -> str:
        """Send events as they come until dropped or shut down; returns why it ended."""
        sub = self.sub
        while True:
            if sub.dropped is None and not sub.backlog:
                try:
                    async with asyncio.timeout(heartbeat_s):
                        await sub.ready.wait()
                except TimeoutError:
                    await self.send(HEARTBEAT)
                    continue
            if sub.dropped is not None:
                return sub.dropped
            await self.send_items(sub.take())
            await asyncio.sleep(COALESCE_S)  # let more events gather into the next write

    async def finish(self, reason: str) -> bool:
        """A last event saying why the stream ends, then the end; whether it went out."""
        name = "closed" if reason == SHUTTING_DOWN else "dropped"
        last = self.last_sent or None
        try:
            await self.send(_frame(name, {"reason": reason, "last_event_id": last}), 1.0)
            await self.response.send("", True)  # the end of the chunked body
        except (TimeoutError, OSError):
            return False
        return True


async def events(request: Request) -> HTTPResponse | None:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    rid = request_id_of(request)
    try:
        last_id = _last_event_id(request)
    except BadRequest as err:
        return error_response(err, Protocol.OPENAI, rid, commit_of(state))
    bus = state.events
    # No await between subscribing and reading the ring: nothing falls between the two.
    sub = bus.subscribe()
    replay = bus.since(last_id) if last_id is not None else Replay([], missed=False)
    try:
        headers = base_headers(rid, commit_of(state))
        headers.update(SSE_HEADERS)
        response = await request.respond(headers=headers, content_type="text/event-stream")
        _small_buffers(request)
        viewer = _Viewer(response, sub)
        try:
            await viewer.send(b"retry: 2000\n: connected\n\n")
            await viewer.replay(replay)
            reason = await viewer.pump(state.settings.events_heartbeat_s)
        except TimeoutError:
            bus.drop(sub, STUCK)
            reason = sub.dropped or STUCK
        delivered = await viewer.finish(reason)
        if reason != SHUTTING_DOWN:
            log.warning("event viewer dropped: %s", reason, extra={"request_id": rid})
    finally:
        bus.unsubscribe(sub)
    # The stream is over: let the connection go (shutdown waits for open ones). A viewer
    # that cannot take the last bytes is cut off rather than left holding a buffer.
    transport: Any = request.transport
    if delivered:
        transport.close()
    else:
        transport.abort()
    return None
