"""What every governed endpoint shares around its own stages: the request's record, the key
check, the body's hold, admission and settlement, the error answer, and the record at the end.

`governed(request, protocol, serve)` runs `serve` (generation: pipeline; media; files and
batches) inside it: a `GatewayError` from any stage answers in the caller's protocol, and
whatever happened, the body's hold is released, the usage settled and the request recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec

from sanic import HTTPResponse, Request

from gateway.errors import GatewayError
from gateway.front_door import close_after_answer
from gateway.limits import Admission
from gateway.request.auth import authenticate, presented_key
from gateway.request.exchange import Exchange
from gateway.request.settlement import Settlement
from gateway.responses import base_headers, error_response, request_id_of
from gateway.state import AppState
from gateway.tracing.spans import end_request, start_request
from gateway.vocabulary import Protocol
from policies.scopes import Scope
from policies.snapshot import Principal, Snapshot


class NotReady(GatewayError):
    status = 503
    code = "policy_not_ready"
    kind = "not_ready"

    def __init__(self) -> None:
        super().__init__("The gateway has no valid policy applied yet. Retry in a few seconds.")


class Governed:
    """One governed request's shared state, as its stages reach it."""

    __slots__ = (
        "_admission",
        "_held",
        "commit",
        "ex",
        "request",
        "settlement",
        "snapshot",
        "state",
        "trace",
    )

    def __init__(self, request: Request, protocol: Protocol) -> None:
        self.request = request
        self.state: AppState = request.app.ctx.state
        self.snapshot = self.state.policy.snapshot
        """The policy this request is served under, start to end (a reload does not change it)."""
        self.commit = self.snapshot.commit if self.snapshot else None
        self.ex = Exchange(request_id_of(request), protocol, time.perf_counter(), time.time())
        self.settlement: Settlement | None = None
        self._admission: Admission | None = None
        self._held = 0
        self.trace = start_request(request)  # None when tracing is off

    def authenticate(self) -> tuple[Snapshot, Principal]:
        """Stage ①: the key, before any body byte is read (a refused key costs no read)."""
        if self.snapshot is None:
            raise NotReady()
        presented = presented_key(self.request.headers, self.request.args.get("key"))
        principal = authenticate(self.snapshot, presented)
        self.ex.authenticated(principal)
        return self.snapshot, principal

    async def read_body(self) -> None:
        """The whole body, within the gateway's size and time bounds (request.body)."""
        self._held = await self.state.bodies.read(self.request)

    async def admit(
        self, scopes: Sequence[Scope], estimated_tokens: int
    ) -> tuple[Settlement, dict[str, str]]:
        """Stage ②: admitted by every scope, or a 429; the settlement that will count it,
        and the headers of its answer."""
        self._admission = await self.state.limiter.admit(scopes, estimated_tokens)
        self.settlement = Settlement(self.state.limiter, self._admission, self.ex)
        headers = base_headers(self.ex.request_id, self.commit)
        headers.update(self._admission.headers)
        return self.settlement, headers

    def refused(self, err: GatewayError) -> HTTPResponse:
        self.ex.refused(err)
        close_after_answer(self.request)  # when refused before its body was read
        extra = self._admission.headers if self._admission is not None else None
        return error_response(err, self.ex.protocol, self.ex.request_id, self.commit, extra)

    async def finish(self) -> None:
        self.state.bodies.release(self._held)
        try:
            if self.settlement is not None:
                # Shielded: a client that leaves now (its task cancelled) cannot stop the
                # count, nor, by the `finally`, the record.
                await self.settlement.settle()
        finally:
            # Recorded on the loop's next turn: after Sanic has written a whole-body
            # response, so recording is not part of the latency the client sees.
            asyncio.get_running_loop().call_soon(self.state.recorder.record, self.ex)
            if self.trace is not None:
                end_request(self.trace, self.ex, self.request, self.commit)


P = ParamSpec("P")


async def governed(
    request: Request,
    protocol: Protocol,
    serve: Callable[Concatenate[Governed, P], Awaitable[HTTPResponse | None]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> HTTPResponse | None:
    """`serve(g, *args)` one request; errors answer in `protocol`'s shape (see the module's
    docstring). The arguments are passed on rather than closed over: one coroutine less
    per request on the hot path."""
    g = Governed(request, protocol)
    try:
        return await serve(g, *args, **kwargs)
    except GatewayError as err:
        return g.refused(err)
    finally:
        await g.finish()
