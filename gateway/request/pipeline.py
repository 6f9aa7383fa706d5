"""The only place that knows the stage order of a generation request.

① auth ─► parse ─► ③ route (404 before 403) ─► ② admit ─► ④ plan (request.plan) ─►
⑤ upstream ─► ⑥ relay or translate back (request.relay) ─► ⑦ settle (request.settlement)
and record, in `finally`, whatever happened.

Stages ① to ③ turn the HTTP request into a `Call`, the immutable description every later
stage reads; the `Exchange` is the request's record, changed only through its transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from gateway.errors import BadRequest, Forbidden, MalformedJSON, NotFound, Protocol
from gateway.request.call import Call
from gateway.request.forwarded_headers import forwarded_headers
from gateway.request.governed import Governed, governed
from gateway.request.model_names import check_model_name
from gateway.request.operations import check_operation
from gateway.request.relay import relay
from gateway.upstream.endpoints import routable
from gateway.vocabulary import Op
from policies.snapshot import Principal, ResolvedRoute, Snapshot


def model_field(body: dict[str, Any]) -> str:
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
    json_array: bool = False
    """Gemini's streamGenerateContent without alt=sse: the stream as one JSON array."""


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


def check_required(body: dict[str, Any], required: tuple[tuple[str, type], ...]) -> None:
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
    return await governed(request, endpoint.protocol, _generate, endpoint, path_model, path_stream)


async def _generate(
    g: Governed, endpoint: Endpoint, path_model: str | None, path_stream: bool
) -> HTTPResponse | None:
    snapshot, principal = g.authenticate()
    # A refused header costs no body read and no admission (it counts toward no limit).
    forwarded = forwarded_headers(g.request.headers, endpoint.protocol)
    await g.read_body()
    body = parse_body(g.request.body)
    model = path_model if path_model is not None else model_field(body)
    check_model_name(model)  # before it is recorded, routed or sent anywhere
    stream = path_stream or _stream_field(body)
    g.ex.asked(model, stream and endpoint.op is not Op.COUNT_TOKENS)
    check_required(body, endpoint.required)
    route = check_operation(resolve_route(snapshot, principal, model), endpoint.op)
    call = Call(
        protocol=endpoint.protocol,
        op=endpoint.op,
        raw=g.request.body,
        body=body,
        model=model,
        route=route,
        key_id=principal.key_id,
        stream=g.ex.stream,
        json_array=endpoint.json_array,
        forwarded=forwarded,
    )
    settlement, headers = await g.admit(principal.scopes, call.prompt_estimate)
    return await relay(g.request, g.state, call, g.ex, settlement, headers)


def resolve_route(snapshot: Snapshot, principal: Principal, model: str) -> ResolvedRoute:
    """Stage ③: the route of `model` for this key, narrowed to the targets that can be
    called; a 404 when there is none, checked before the key's 403."""
    route = snapshot.resolve(model)
    if route is None or not route.targets:
        raise NotFound(
            f"The model '{model}' does not exist on this gateway. "
            "GET /v1/models lists the models your key may use."
        )
    if not (principal.may_use(model) or principal.may_use(route.name)):
        raise Forbidden(f"Your key may not use the model '{model}'. Ask for access to it.")
    return routable(route)
