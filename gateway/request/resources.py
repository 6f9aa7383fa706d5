"""Files and batches calls through the pipeline's stages, as request.media runs them.

① the key (before any body byte is read), then ② admission: every call counts toward the
key's rpm and concurrency (estimated at no tokens: a file call generates none), ⑤ the
dispatcher (the holder's credential pool and retries, request.files_upstream), ⑦ the
settlement and the record, whatever happened. A batch's tokens are counted in the call that
first sees it finished (request.batches), so they land in that call's record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sanic import HTTPResponse, Request

from gateway.request.exchange import Exchange
from gateway.request.files_upstream import holder, open_resource, read_object
from gateway.request.forwarded_headers import forwarded_headers
from gateway.request.governed import Governed, governed
from gateway.request.ownership import Ownership, ownership_at
from gateway.request.settlement import Settlement
from gateway.responses import json_response
from gateway.state import AppState
from gateway.upstream.dispatch import ForwardHeaders, Opened, ResourceCall
from gateway.vocabulary import Protocol
from policies.snapshot import Principal, ResolvedRoute, Snapshot


@dataclass(slots=True)
class Served:
    """One admitted files or batches call: what its handler works with."""

    request: Request
    state: AppState
    snapshot: Snapshot
    principal: Principal
    ex: Exchange
    store: Ownership
    settlement: Settlement
    headers: dict[str, str]
    """The admission's rate-limit headers, for the answer."""
    forwarded: ForwardHeaders | None

    def answer(self, data: Any, status: int = 200) -> HTTPResponse:
        return json_response(data, self.ex.request_id, self.snapshot.commit, status, self.headers)

    async def open(self, route: ResolvedRoute, call: ResourceCall) -> Opened:
        self.ex.asked(route.name, False)
        opened = await open_resource(self.state.dispatcher, route, call, self.forwarded)
        self.ex.opened(opened.target)
        self.ex.answered(opened.response.status_code)
        return opened

    async def call(self, route: ResolvedRoute, call: ResourceCall) -> dict[str, Any]:
        """The upstream's JSON object answer to `call`."""
        opened = await self.open(route, call)
        data = await read_object(opened)
        self.ex.mark_first_byte()
        return data

    def holder_label(self, route: ResolvedRoute) -> str:
        return holder(route).label


Handler = Callable[[Served], Awaitable[HTTPResponse | None]]


async def run_resource(
    request: Request, handler: Handler, *, reads_body: bool
) -> HTTPResponse | None:
    """Serve one files or batches call end to end; errors answer in OpenAI's shape."""

    async def serve(g: Governed) -> HTTPResponse | None:
        snapshot, principal = g.authenticate()
        forwarded = forwarded_headers(request.headers, Protocol.OPENAI)
        if reads_body:
            await g.read_body()
        settlement, headers = await g.admit(principal.scopes, 0)
        store = ownership_at(g.state.settings.state_dir)
        served = Served(
            request, g.state, snapshot, principal, g.ex, store, settlement, headers, forwarded
        )
        return await handler(served)

    return await governed(request, Protocol.OPENAI, serve)
