"""Model lists: exactly the routes the calling key may use, in the caller's protocol's shape.

The shape follows the caller's SDK: Gemini's when the key came Gemini-style (x-goog-api-key
or ?key=), Anthropic's when the request carries `anthropic-version` (every Anthropic SDK
sends it), OpenAI's otherwise.

A route none of whose targets has a usable credential right now (all refused by the
upstream, or unresolvable) is left out, and GET of it is a 404; /admin/api/status names it
and says why. A route whose credentials are only cooling down stays listed.
"""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, NotFound, Protocol
from gateway.protocols import ADAPTERS, model_list_caller
from gateway.protocols.gemini import MODELS
from gateway.request.auth import authenticate, presented_key
from gateway.request.governed import NotReady
from gateway.request.model_names import check_model_name
from gateway.responses import error_response, json_response, request_id_of
from gateway.state import AppState
from gateway.upstream.availability import route_unusable
from policies.snapshot import Principal, Snapshot


def _principal(request: Request) -> tuple[Snapshot, Principal]:
    state: AppState = request.app.ctx.state
    snapshot = state.policy.snapshot
    if snapshot is None:
        raise NotReady()
    secret = presented_key(request.headers, request.args.get("key"))
    return snapshot, authenticate(snapshot, secret)


def list_models(request: Request, protocol: Protocol | None = None) -> HTTPResponse:
    protocol = protocol or model_list_caller(request.headers, request.args)
    adapter = ADAPTERS[protocol]
    rid = request_id_of(request)
    snapshot = request.app.ctx.state.policy.snapshot
    commit = snapshot.commit if snapshot else None
    try:
        snapshot, principal = _principal(request)
        pools = request.app.ctx.state.pools
        names = [
            name
            for name in snapshot.route_names_for(principal)
            if route_unusable(snapshot, snapshot.exact_routes[name], pools) is None
        ]
        page = adapter.model_list(names, request.args)  # Anthropic's refuses odd paging
    except GatewayError as err:
        return error_response(err, protocol, rid, commit)
    return json_response(page, rid, commit)


def show_model(request: Request, model_id: str, protocol: Protocol | None = None) -> HTTPResponse:
    protocol = protocol or model_list_caller(request.headers, request.args)
    model_id = model_id.removeprefix(MODELS)
    rid = request_id_of(request)
    snapshot = request.app.ctx.state.policy.snapshot
    commit = snapshot.commit if snapshot else None
    try:
        snapshot, principal = _principal(request)
        check_model_name(model_id)
        route = snapshot.resolve(model_id)
        if (
            route is None
            or not (principal.may_use(model_id) or principal.may_use(route.name))
            or route_unusable(snapshot, route.route, request.app.ctx.state.pools) is not None
        ):
            raise NotFound(f"The model '{model_id}' does not exist or your key may not use it.")
    except GatewayError as err:
        return error_response(err, protocol, rid, commit)
    return json_response(ADAPTERS[protocol].model_entry(model_id), rid, commit)
