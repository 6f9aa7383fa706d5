"""What every operations endpoint needs: the worker's state and the admin-token check."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, Protocol
from gateway.request.auth import authenticate_admin, presented_key
from gateway.responses import error_response, request_id_of
from gateway.state import AppState


def state_of(request: Request) -> AppState:
    state: AppState = request.app.ctx.state
    return state


def commit_of(state: AppState) -> str | None:
    return state.policy.snapshot.commit if state.policy.snapshot else None


def require_admin(request: Request) -> None:
    """Raise 401/403 unless the request carries a valid admin token."""
    authenticate_admin(state_of(request).policy.snapshot, presented_key(request.headers, None))


def refused(request: Request) -> HTTPResponse | None:
    """The 401/403 answer when the request has no valid admin token, else None."""
    try:
        require_admin(request)
    except GatewayError as err:
        state = state_of(request)
        return error_response(err, Protocol.OPENAI, request_id_of(request), commit_of(state))
    return None
