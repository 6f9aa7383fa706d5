"""Generation request bodies, read only after the key was accepted, and bounded while read.

Generation routes are Sanic streaming routes: Sanic reads their head and leaves the body to
the pipeline, which reads it here after authentication. A body is bounded in size (413), in
time (408, counted from the first read: a client trickling bytes gets no extension), and in
the memory the bodies of this worker's requests may hold at once (503 with Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import cast

from sanic import Request
from sanic.exceptions import PayloadTooLarge

from gateway.errors import BodyTooLarge, GatewayError
from gateway.front_door import limit_body, take_arrived_body

RETRY_AFTER_S = 1


class BodyTimeout(GatewayError):
    status = 408
    code = "request_timeout"
    kind = "timeout"


class BodiesOverBudget(GatewayError):
    status = 503
    code = "server_busy"
    kind = "busy"

    def __init__(self) -> None:
        super().__init__(
            "The gateway is receiving too many request bodies at once. "
            f"Retry in {RETRY_AFTER_S} second.",
            headers={"retry-after": str(RETRY_AFTER_S)},
        )


class RequestBodies:
    """Reads bodies for one worker, holding the bytes of those in flight to a budget."""

    def __init__(self, max_bytes: int, budget_bytes: int, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self.budget_bytes = budget_bytes
        self.timeout_s = timeout_s
        self.in_flight = 0
        """Body bytes held by this worker's requests, from the start of their read to `release`."""

    async def read(self, request: Request) -> int:
        """Read the body into `request.body`; the bytes it holds, for `release` when done."""
        stream = cast(AsyncIterable[bytes] | None, request.stream)
        if stream is None or request.body:
            return 0
        limit_body(request, self.max_bytes)
        headers = request.headers
        # A chunked body's size is known only at its end: it holds the most a body may.
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        held = self._hold(self.max_bytes if chunked else int(headers.get("content-length", 0)))
        # Usually the whole body came with the head: no deadline to arm, nothing to wait for.
        body = None if chunked else take_arrived_body(request)
        try:
            if body is None:
                async with asyncio.timeout(self.timeout_s):
                    body = b"".join([chunk async for chunk in stream])
        except TimeoutError:
            self.release(held)
            raise BodyTimeout(
                f"The request body did not arrive within {self.timeout_s:g} s. "
                "Send it faster, or send a smaller request."
            ) from None
        except PayloadTooLarge:  # a chunked body grew past the limit
            self.release(held)
            raise body_too_large(self.max_bytes) from None
        except BaseException:
            self.release(held)
            raise
        request.body = body
        if len(body) < held:
            self.release(held - len(body))
            held = len(body)
        return held

    def release(self, held: int) -> None:
        self.in_flight -= held

    def _hold(self, size: int) -> int:
        """Take `size` bytes of the budget for a body about to be read."""
        if size > self.max_bytes:
            raise body_too_large(self.max_bytes)
        if self.in_flight + size > self.budget_bytes:
            raise BodiesOverBudget()
        self.in_flight += size
        return size


def body_too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"The request body is larger than this gateway accepts ({limit} bytes). "
        "Send a smaller request."
    )
