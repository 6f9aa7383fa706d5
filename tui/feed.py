"""Follow the gateway's finished-request events for as long as the UI runs.

The feed survives gateway restarts: when the stream ends (shutdown, a dropped viewer, a
refused connection) it says so, waits a little longer each time, and reconnects with
Last-Event-ID, so the events the gateway still keeps are replayed and none shows twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from gateway.payloads import RequestEvent
from tui.client import OPENED, AdminApi, AdminError, TokenRefused
from tui.traffic import RequestRecord

LIVE = "live"
CONNECTING = "connecting"
RECONNECTING = "reconnecting"
REFUSED = "refused"

BACKOFF_S = (0.25, 0.5, 1.0, 2.0)
"""Waits between reconnection attempts (the last repeats); short, as restarts are short."""
REFUSED_WAIT_S = 10.0
"""A refused token may become valid by a policy commit: try again, but rarely."""


@dataclass(frozen=True)
class FeedState:
    """Where the connection stands; `detail` says why when it is not live."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class FeedGap:
    """The gateway no longer keeps some events after the last one seen (e.g. it restarted)."""

    reason: str


FeedItem = RequestRecord | FeedState | FeedGap


async def follow_events(
    client: AdminApi,
    *,
    backoff_s: tuple[float, ...] = BACKOFF_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[FeedItem]:
    """Records, state changes and gaps, forever (cancel the consumer to stop)."""
    last_id: int | None = 0  # 0: replay what the gateway keeps, to fill the table at once
    attempt = 0
    yield FeedState(CONNECTING, f"connecting to {client.url}")
    while True:
        wait = backoff_s[min(attempt, len(backoff_s) - 1)]
        reason = "the gateway closed the event stream"
        try:
            async for event in client.events(last_id):
                if event.event == OPENED:
                    attempt = 0
                    yield FeedState(LIVE)
                elif event.event == "request" and event.id is not None:
                    record = _record(event.id, event.data)
                    if record is None or (last_id is not None and record.event_id <= last_id):
                        continue  # malformed, or seen already
                    last_id = record.event_id
                    yield record
                elif event.event == "gap" and last_id:
                    yield FeedGap("some requests finished while the stream was down")
                elif event.event in ("dropped", "closed"):
                    reason = _reason(event.data) or reason
        except TokenRefused as exc:
            yield FeedState(REFUSED, str(exc))
            await sleep(REFUSED_WAIT_S)
            continue
        except AdminError as exc:
            reason = str(exc)
        attempt += 1
        yield FeedState(RECONNECTING, reason)
        await sleep(wait)


def _record(event_id: str, data: str) -> RequestRecord | None:
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict):
            return None
        # Read field by field, each checked (from_event): another version's event still shows.
        return RequestRecord.from_event(int(event_id), cast(RequestEvent, fields))
    except ValueError:
        return None


def _reason(data: str) -> str | None:
    try:
        fields = json.loads(data)
    except ValueError:
        return None
    reason = fields.get("reason") if isinstance(fields, dict) else None
    return str(reason) if reason else None
