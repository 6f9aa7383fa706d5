"""/v1/batches, bound to the key that created each batch (issue 15).

- POST /v1/batches: the input file must be the key's own, uploaded with purpose `batch` (so
  its lines were checked, request.jsonl_models), and the batch runs at the route that holds
  it. GET /v1/batches/{id} and POST /v1/batches/{id}/cancel: another key's batch is 404.
- GET /v1/batches lists the key's own batches from the ownership store (after, limit up to
  100), each refreshed from the upstream (its stored copy when that fails).
- Whenever the gateway sees a batch object, its output_file_id and error_file_id become the
  batch owner's files, and the object is kept.
- Tokens: a batch's `usage`, when the upstream reports it on a finished batch (completed,
  expired or cancelled: its counts no longer change), is counted once, by the first call of
  any worker that sees it so (request.ownership.count_once): it is added to that call's
  usage, so the key's and teams' token limits are charged and the call's record (request
  log, events) carries the tokens. Left alone: admission cannot foresee a batch's tokens
  (a batch may overrun a token limit once), the cost is the batch route target's price (none
  unless routes price it; OpenAI's batch discount is not applied), and usage the upstream
  does not report is not estimated.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import orjson
from sanic import HTTPResponse

from gateway.errors import BadRequest, GatewayError, NotFound, UpstreamFailed
from gateway.protocols.openai import OPENAI
from gateway.request.files import int_arg, list_object, owned_file
from gateway.request.files_upstream import held_route
from gateway.request.line_models import batch_op
from gateway.request.pipeline import check_required, parse_body
from gateway.request.resources import Served
from gateway.upstream.dispatch import ResourceCall
from policies.snapshot import ResolvedRoute

BATCHES_PAGE_MAX = 100
BATCHES_PAGE_DEFAULT = 20
REFRESH_AT_ONCE = 8
FINISHED = frozenset({"completed", "expired", "cancelled"})
REQUIRED = (("input_file_id", str), ("endpoint", str), ("completion_window", str))


def missing_batch(batch_id: str) -> NotFound:
    return NotFound(f"No such Batch object: {batch_id[:128]}", param="batch_id")


async def create_batch(served: Served) -> HTTPResponse:
    body = parse_body(served.request.body)
    check_required(body, REQUIRED)
    batch_op(body["endpoint"])
    try:
        owned, route = await owned_file(served, body["input_file_id"])
    except NotFound as err:
        err.param = "input_file_id"
        raise
    if (owned.object or {}).get("purpose") != "batch":
        raise BadRequest(
            "The input file was not uploaded with purpose 'batch'.", param="input_file_id"
        )
    # Written anew: a duplicate key in the client's bytes could name another file.
    data = await served.call(route, ResourceCall("POST", "/batches", orjson.dumps(body)))
    batch_id = data.get("id")
    if not isinstance(batch_id, str):
        raise UpstreamFailed("The upstream's batch object has no id.")
    await served.store.aclaim("batch", batch_id, served.principal.key_id, route.name, data)
    await observe(served, route, data)
    return served.answer(data)


async def get_batch(served: Served, batch_id: str) -> HTTPResponse:
    route = await _owned_batch(served, batch_id)
    data = await served.call(route, ResourceCall("GET", f"/batches/{_segment(batch_id)}"))
    await observe(served, route, data)
    return served.answer(data)


async def cancel_batch(served: Served, batch_id: str) -> HTTPResponse:
    route = await _owned_batch(served, batch_id)
    path = f"/batches/{_segment(batch_id)}/cancel"
    data = await served.call(route, ResourceCall("POST", path))
    await observe(served, route, data)
    return served.answer(data)


async def list_batches(served: Served) -> HTTPResponse:
    args = served.request.args
    limit = int_arg(args.get("limit"), "limit", 1, BATCHES_PAGE_MAX, BATCHES_PAGE_DEFAULT)
    page = await asyncio.to_thread(
        served.store.page, "batch", served.principal.key_id, after=args.get("after"), limit=limit
    )
    gate = asyncio.Semaphore(REFRESH_AT_ONCE)

    async def fresh(row_id: str, route_name: str, stored: dict[str, Any] | None) -> Any:
        route = served_route(served, route_name)
        if route is None:
            return stored
        async with gate:
            try:
                data = await served.call(route, ResourceCall("GET", f"/batches/{_segment(row_id)}"))
            except GatewayError:  # a refresh is best effort: the stored copy stands
                return stored
        await observe(served, route, data)
        return data

    found = await asyncio.gather(*(fresh(r.id, r.route, r.object) for r in page.rows))
    return served.answer(list_object([d for d in found if isinstance(d, dict)], page.has_more))


async def observe(served: Served, route: ResolvedRoute, data: dict[str, Any]) -> None:
    """What the gateway learns from a batch object: its files' owner, its finished usage."""
    batch_id = data.get("id")
    if not isinstance(batch_id, str):
        return
    key_id = served.principal.key_id
    for name in ("output_file_id", "error_file_id"):
        file_id = data.get(name)
        if isinstance(file_id, str) and file_id:
            await served.store.aclaim("file", file_id, key_id, route.name, None)
    await served.store.aremember("batch", batch_id, data)
    usage = data.get("usage")
    finished = data.get("status") in FINISHED and isinstance(usage, dict)
    if finished and await served.store.acount_once(batch_id):
        OPENAI.read_usage(data, served.ex.usage)


def served_route(served: Served, name: str) -> ResolvedRoute | None:
    return held_route(served.snapshot, served.principal, name)


async def _owned_batch(served: Served, batch_id: str) -> ResolvedRoute:
    owned = await served.store.afind("batch", batch_id, served.principal.key_id)
    route = served_route(served, owned.route) if owned else None
    if owned is None or route is None:
        raise missing_batch(batch_id)
    return route


def _segment(value: str) -> str:
    return quote(value, safe="")
