"""GET /admin/api/usage: per key, rate and quota use against limits; per model, totals.

Keys are the applied policy's keys (`?key=ID` for one). Rate and quota use come from the
limiter's store of record (Redis when shared); request, error and token totals since this
process started come from the recorder's counts.
"""

from __future__ import annotations

import asyncio

from sanic import HTTPResponse, Request

from gateway.admin.common import commit_of, refused, state_of
from gateway.errors import NotFound, Protocol
from gateway.payloads import KeyUsage, ModelUsage, Usage, utc_iso
from gateway.responses import error_response, json_response, request_id_of
from gateway.state import AppState
from gateway.usage.traffic import Totals
from policies.snapshot import Principal

FETCH_CONCURRENCY = 32
"""Keys read from the limiter at once (one Redis round trip each when shared)."""


async def _key_reports(state: AppState, principals: list[Principal]) -> list[KeyUsage]:
    per_key = state.recorder.traffic.per_key()
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(principal: Principal) -> KeyUsage:
        async with gate:
            report = await state.limiter.fetch_usage(principal.key_id, principal.limits)
        return KeyUsage(
            **report,
            owner=principal.owner,
            disabled=principal.disabled,
            expires=principal.expires.isoformat() if principal.expires else None,
            since_start=per_key.get(principal.key_id, Totals()).as_dict(),
        )

    return list(await asyncio.gather(*(one(p) for p in principals)))


async def usage(request: Request) -> HTTPResponse:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    rid, commit = request_id_of(request), commit_of(state)
    snapshot = state.policy.snapshot
    principals = sorted(
        snapshot.principals_by_hash.values() if snapshot else (), key=lambda p: p.key_id
    )
    wanted = request.args.get("key")
    if wanted is not None:
        principals = [p for p in principals if p.key_id == wanted]
        if not principals:
            err = NotFound(f"There is no key '{wanted}' in the applied policy.")
            return error_response(err, Protocol.OPENAI, rid, commit)
    models = [
        ModelUsage(model=model, provider=provider, **totals.as_dict())
        for (model, provider), totals in sorted(state.recorder.traffic.per_model(wanted).items())
    ]
    body: Usage = {
        "policy": commit,
        "since": utc_iso(state.started_at),
        "keys": await _key_reports(state, principals),
        "models": models,
    }
    return json_response(body, rid, commit)
