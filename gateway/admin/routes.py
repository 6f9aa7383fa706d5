"""Operations endpoints: health, readiness, status (admin token as Bearer)."""

from __future__ import annotations

import time
from importlib.metadata import version

from sanic import Blueprint, HTTPResponse, Request

from gateway.auth import authenticate_admin, presented_key
from gateway.errors import GatewayError, Protocol
from gateway.responses import error_response, json_response, request_id_of
from gateway.state import AppState

bp = Blueprint("admin")


def _state(request: Request) -> AppState:
    state: AppState = request.app.ctx.state
    return state


def _commit(state: AppState) -> str | None:
    return state.policy.snapshot.commit if state.policy.snapshot else None


def require_admin(request: Request) -> None:
    """Raise 401/403 unless the request carries a valid admin token."""
    state = _state(request)
    authenticate_admin(state.policy.snapshot, presented_key(request.headers, None))


@bp.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    state = _state(request)
    return json_response({"status": "ok"}, request_id_of(request), _commit(state))


@bp.get("/readyz")
async def readyz(request: Request) -> HTTPResponse:
    state = _state(request)
    ready = state.policy.snapshot is not None
    body = {"status": "ready" if ready else "not ready", "policy": _commit(state)}
    return json_response(body, request_id_of(request), _commit(state), 200 if ready else 503)


@bp.get("/admin/api/status")
async def status(request: Request) -> HTTPResponse:
    state = _state(request)
    rid = request_id_of(request)
    try:
        require_admin(request)
    except GatewayError as err:
        return error_response(err, Protocol.OPENAI, rid, _commit(state))
    body = {
        "policy": state.policy.status_dict(),
        "limits": state.limiter.status(),
        "credentials": state.pools.status(),
        "version": version("modelgate"),
        "uptime_s": round(time.time() - state.started_at, 1),
    }
    return json_response(body, rid, _commit(state))
