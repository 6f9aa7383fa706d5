"""Model lists: exactly the routes the calling key may use, in OpenAI's or Gemini's shape.

A route none of whose targets has a usable credential right now (all refused by the
upstream, or unresolvable) is left out, and GET of it is a 404; /admin/api/status names it
and says why. A route whose credentials are only cooling down stays listed.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from gateway.auth import authenticate, presented_key
from gateway.errors import GatewayError, NotFound, Protocol
from gateway.pipeline import NotReady
from gateway.responses import error_response, json_response, request_id_of
from gateway.state import AppState
from gateway.upstream.availability import route_unusable
from policies.snapshot import Principal, Snapshot


def _is_gemini_style(request: Request) -> bool:
    return bool(request.headers.get("x-goog-api-key") or request.args.get("key"))


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "modelgate"}


def _gemini_model(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "displayName": name,
        "supportedGenerationMethods": ["generateContent", "countTokens", "embedContent"],
    }


def _principal(request: Request) -> tuple[Snapshot, Principal]:
    state: AppState = request.app.ctx.state
    snapshot = state.policy.snapshot
    if snapshot is None:
        raise NotReady()
    secret = presented_key(request.headers, request.args.get("key"))
    return snapshot, authenticate(snapshot, secret)


def list_models(request: Request, protocol: Protocol | None = None) -> HTTPResponse:
    protocol = protocol or (Protocol.GEMINI if _is_gemini_style(request) else Protocol.OPENAI)
    rid = request_id_of(request)
    snapshot = request.app.ctx.state.policy.snapshot
    commit = snapshot.commit if snapshot else None
    try:
        snapshot, principal = _principal(request)
    except GatewayError as err:
        return error_response(err, protocol, rid, commit)
    pools = request.app.ctx.state.pools
    names = [
        name
        for name in snapshot.route_names_for(principal)
        if route_unusable(snapshot, snapshot.exact_routes[name], pools) is None
    ]
    if protocol is Protocol.GEMINI:
        return json_response({"models": [_gemini_model(n) for n in names]}, rid, commit)
    data = {"object": "list", "data": [_openai_model(n) for n in names]}
    return json_response(data, rid, commit)


def show_model(request: Request, model_id: str, protocol: Protocol | None = None) -> HTTPResponse:
    protocol = protocol or (Protocol.GEMINI if _is_gemini_style(request) else Protocol.OPENAI)
    model_id = model_id.removeprefix("models/")
    rid = request_id_of(request)
    snapshot = request.app.ctx.state.policy.snapshot
    commit = snapshot.commit if snapshot else None
    try:
        snapshot, principal = _principal(request)
        route = snapshot.resolve(model_id)
        if (
            route is None
            or not (principal.may_use(model_id) or principal.may_use(route.name))
            or route_unusable(snapshot, route.route, request.app.ctx.state.pools) is not None
        ):
            raise NotFound(f"The model '{model_id}' does not exist or your key may not use it.")
    except GatewayError as err:
        return error_response(err, protocol, rid, commit)
    if protocol is Protocol.GEMINI:
        return json_response(_gemini_model(model_id), rid, commit)
    return json_response(_openai_model(model_id), rid, commit)
