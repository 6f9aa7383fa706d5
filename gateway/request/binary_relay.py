"""A media answer relayed to the client as it arrives: audio, JSON, text or SSE alike.

Speech is audio of any length, an image answer megabytes of base64, a transcript a stream
when asked: none is held whole. Bytes go out as they come, with the upstream's status and
content type; a text answer keeps a window for its usage (media_usage.AnswerWindow), counted
and settled before the answer's end reaches the client (whose next request, sent at once,
is admitted against it).

An upstream that breaks off mid-answer cannot be told in a binary body: the connection is
closed without the answer's last chunk, so the client sees an incomplete answer, never a
complete-looking short one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
from sanic import Request

from gateway.request.exchange import Exchange
from gateway.request.media_usage import AnswerWindow
from gateway.request.settlement import Settlement
from gateway.upstream.dispatch import Opened

log = logging.getLogger("modelgate.relay")

CLIENT_CLOSED = 499
_TEXT_TYPES = ("application/json", "text/")
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def is_text(content_type: str) -> bool:
    """JSON, SSE or plain text: an answer that may report usage."""
    return content_type.split(";", 1)[0].strip().lower().startswith(_TEXT_TYPES)


async def relay_bytes(
    request: Request,
    opened: Opened,
    ex: Exchange,
    settlement: Settlement,
    headers: dict[str, str],
    count: Callable[[AnswerWindow | None], None],
) -> None:
    """Relay `opened`'s answer; `count(window)` fills the usage once it has ended (or broke
    off: then from what came)."""
    upstream = opened.response
    content_type = upstream.headers.get("content-type") or DEFAULT_CONTENT_TYPE
    window = AnswerWindow() if is_text(content_type) else None
    counted = False
    response: Any = None
    try:
        response = await request.respond(
            status=upstream.status_code, headers=headers, content_type=content_type
        )
        ex.answered(upstream.status_code)
        async with asyncio.timeout_at(opened.deadline):
            async for chunk in upstream.aiter_raw():
                ex.mark_first_byte()
                if window is not None:
                    window.feed(chunk)
                await response.send(chunk)
        count(window)
        counted = True
        await settlement.settle()  # before the client sees the end
        await response.eof()
    except (httpx.HTTPError, TimeoutError):
        ex.failed(502, "upstream_stream_broken")
        log.warning("upstream answer broke off", extra={"request_id": ex.request_id})
        _abort(request)
    except (asyncio.CancelledError, ConnectionError):
        ex.failed(CLIENT_CLOSED, "client_closed")
        raise
    finally:
        if not counted:
            count(window)
        await upstream.aclose()


def _abort(request: Request) -> None:
    """Close the client's connection without ending the chunked answer."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        transport.close()
