"""The event feed reconnects with Last-Event-ID and says where it stands (scripted streams)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from tui.client import OPENED, AdminError, TokenRefused
from tui.feed import (
    CONNECTING,
    LIVE,
    RECONNECTING,
    REFUSED,
    FeedGap,
    FeedItem,
    FeedState,
    follow_events,
)
from tui.sse import SseEvent
from tui.traffic import RequestRecord


def request(event_id: int) -> SseEvent:
    data = {"ts": 1.0, "request_id": f"r{event_id}", "status": 200, "latency_ms": 1}
    return SseEvent("request", json.dumps(data), str(event_id))


class ScriptedAdmin:
    """Each connection plays the next script: events, then the end or an exception."""

    url = "http://gateway.test"

    def __init__(self, *scripts: list[SseEvent] | Exception) -> None:
        self.scripts = list(scripts)
        self.asked_from: list[int | None] = []

    async def events(self, last_event_id: int | None) -> AsyncIterator[SseEvent]:
        self.asked_from.append(last_event_id)
        script = self.scripts.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield event

    async def status(self) -> dict[str, Any]:
        return {}

    async def usage(self) -> dict[str, Any]:
        return {}

    async def sync(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        return None


async def collect(admin: ScriptedAdmin, count: int) -> list[FeedItem]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    items: list[FeedItem] = []
    async for item in follow_events(admin, backoff_s=(0.1, 0.2), sleep=sleep):
        items.append(item)
        if len(items) == count:
            break
    return items


def describe(items: list[FeedItem]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, RequestRecord):
            out.append(f"#{item.event_id}")
        elif isinstance(item, FeedState):
            out.append(item.state)
        else:
            out.append("gap")
    return out


async def test_reconnects_after_a_restart_and_resumes_after_the_last_event() -> None:
    closed = SseEvent("closed", json.dumps({"reason": "the gateway is shutting down"}))
    admin = ScriptedAdmin(
        [SseEvent(OPENED, ""), SseEvent("gap", "{}"), request(1), request(2), closed],
        AdminError("cannot reach the gateway"),
        [SseEvent(OPENED, ""), SseEvent("gap", "{}"), request(2), request(3)],
    )
    items = await collect(admin, 9)
    names = describe(items)
    assert names == [CONNECTING, LIVE, "#1", "#2", RECONNECTING, RECONNECTING, LIVE, "gap", "#3"]
    assert admin.asked_from[:3] == [0, 2, 2]  # 0: replay what is kept; then Last-Event-ID
    first_reconnect = items[4]
    assert isinstance(first_reconnect, FeedState)
    assert first_reconnect.detail == "the gateway is shutting down"
    assert isinstance(items[7], FeedGap)  # a gap after events were seen is worth saying


async def test_a_refused_token_is_reported_and_retried_rarely() -> None:
    admin = ScriptedAdmin(TokenRefused("the gateway does not accept this admin token (401)"))
    admin.scripts.append([SseEvent(OPENED, "")])
    items = await collect(admin, 3)
    assert describe(items) == [CONNECTING, REFUSED, LIVE]
    refused = items[1]
    assert isinstance(refused, FeedState) and "401" in refused.detail


async def test_malformed_events_are_skipped() -> None:
    admin = ScriptedAdmin(
        [SseEvent(OPENED, ""), SseEvent("request", "not json", "4"), request(5)],
    )
    items = await collect(admin, 3)
    assert describe(items) == [CONNECTING, LIVE, "#5"]
