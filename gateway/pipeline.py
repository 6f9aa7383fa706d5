"""The only place that knows the stage order of a generation request.

① auth ─► parse ─► ③ route (404 before 403) ─► ② admit ─► ④ translate ─► ⑤ upstream
─► ⑥ relay or translate back ─► ⑦ settle and record (in `finally`, whatever happened).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from gateway.auth import authenticate, presented_key
from gateway.errors import BadRequest, Forbidden, GatewayError, MalformedJSON, NotFound, Protocol
from gateway.exchange import Exchange
from gateway.forwarded_headers import forwarded_headers
from gateway.front_door import close_after_answer
from gateway.limits import Admission, Limiter
from gateway.model_names import check_model_name
from gateway.responses import base_headers, error_response, request_id_of
from gateway.serve import Serve, serve_call
from gateway.state import AppState
from gateway.upstream.endpoints import routable
from gateway.vocabulary import Op

ModelOf = Callable[[dict[str, Any]], str]


def _model_field(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string.", param="model")
    return model


def _stream_field(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false.", param="stream")
    return stream


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What one client endpoint asks of the pipeline."""

    protocol: Protocol
    op: Op
    required: tuple[tuple[str, type], ...] = ()
    """Fields that must be present, with their JSON type (checked before anything is sent)."""
    serve: Serve = serve_call
    """Stages ④ to ⑥ (count_tokens and Gemini's JSON-array streams bring their own)."""


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise MalformedJSON("the body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(str(exc)) from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _check_required(body: dict[str, Any], required: tuple[tuple[str, type], ...]) -> None:
    for name, kind in required:
        value = body.get(name)
        if value is None:
            raise BadRequest(f"'{name}' is required.", param=name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BadRequest(
                f"'{name}' must be {_TYPE_WORDS.get(kind, kind.__name__)}.", param=name
            )


_TYPE_WORDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    dict: "an object",
    int: "an integer",
}


async def run(
    request: Request,
    endpoint: Endpoint,
    path_model: str | None = None,
    path_stream: bool = False,
) -> HTTPResponse | None:
    """Serve one generation request end to end; errors answer in the caller's protocol."""
    state: AppState = request.app.ctx.state
    snapshot = state.policy.snapshot
    commit = snapshot.commit if snapshot else None
    ex = Exchange(request_id_of(request), endpoint.protocol, time.perf_counter(), time.time())
    admission: Admission | None = None
    held = 0
    try:
        if snapshot is None:
            raise NotReady()
        principal = authenticate(snapshot, presented_key(request.headers, request.args.get("key")))
        ex.key_id = principal.key_id
        # A refused header costs no body read and no admission (it counts toward no limit).
        ex.forwarded = forwarded_headers(request.headers, endpoint.protocol)
        held = await state.bodies.read(request)  # only now: a refused key costs no body read
        body = parse_body(request.body)
        model = path_model if path_model is not None else _model_field(body)
        check_model_name(model)  # before it is recorded, routed or sent anywhere
        ex.model = model
        _check_required(body, endpoint.required)
        stream = path_stream or _stream_field(body)
        ex.stream = stream
        route = snapshot.resolve(model)
        if route is None or not route.targets:
            raise NotFound(
                f"The model '{model}' does not exist on this gateway. "
                "GET /v1/models lists the models your key may use."
            )
        if not (principal.may_use(model) or principal.may_use(route.name)):
            raise Forbidden(f"Your key may not use the model '{model}'. Ask for access to it.")
        route = routable(route)
        admission = await state.limiter.admit(
            principal.key_id, principal.limits, len(request.body) // 4
        )
        ex.settle = _settler(state.limiter, admission, ex)
        headers = base_headers(ex.request_id, commit)
        headers.update(admission.headers)
        return await endpoint.serve(request, state, ex, endpoint.op, body, route, stream, headers)
    except GatewayError as err:
        ex.status, ex.error = err.status_code, err.kind
        close_after_answer(request)  # when refused before its body was read
        extra = admission.headers if admission is not None else None
        return error_response(err, endpoint.protocol, ex.request_id, commit, extra)
    finally:
        state.bodies.release(held)
        await ex.settle_now()
        # Recorded on the loop's next turn: after Sanic has written a whole-body response,
        # so recording is not part of the latency the client sees.
        asyncio.get_running_loop().call_soon(state.recorder.record, ex)


def _settler(limiter: Limiter, admission: Admission, ex: Exchange) -> Callable[[], Awaitable[None]]:
    async def settle() -> None:
        await limiter.settle(admission, ex.usage.total)

    return settle


class NotReady(GatewayError):
    status = 503
    code = "policy_not_ready"
    kind = "not_ready"

    def __init__(self) -> None:
        super().__init__("The gateway has no valid policy applied yet. Retry in a few seconds.")
