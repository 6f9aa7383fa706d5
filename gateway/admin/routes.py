"""Operations endpoints (admin token as Bearer, except the root, health and readiness).

/ (the product's name), /healthz, /readyz, /admin/api/status here; /admin/api/events
(events_api.py), /admin/api/usage (usage_api.py) and /metrics (metrics_api.py) in their own
modules.
"""

from __future__ import annotations

import time
from importlib.metadata import version

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import text

from gateway.admin import events_api, metrics_api, requests_export, usage_api
from gateway.admin.common import commit_of, refused, require_admin, state_of
from gateway.drain import all_workers_ready
from gateway.payloads import Status
from gateway.responses import json_response, request_id_of
from gateway.upstream.availability import unusable_routes

__all__ = ["bp", "require_admin"]

bp = Blueprint("admin")
bp.add_route(events_api.events, "/admin/api/events", methods=["GET"])
bp.add_route(usage_api.usage, "/admin/api/usage", methods=["GET"])
bp.add_route(requests_export.requests_export, "/admin/api/requests", methods=["GET"])
bp.add_route(metrics_api.metrics, "/metrics", methods=["GET"])


PRODUCT = "ModelGate"


async def root(request: Request) -> HTTPResponse:
    """Clients' connectivity checks probe the base URL: the product's name and nothing else
    (no version, no policy commit: nothing an unauthenticated caller could use)."""
    return text(PRODUCT + "\n", headers={"x-request-id": request_id_of(request)})


bp.add_route(root, "/", methods=["GET", "HEAD"])


@bp.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    state = state_of(request)
    return json_response({"status": "ok"}, request_id_of(request), commit_of(state))


@bp.get("/readyz")
async def readyz(request: Request) -> HTTPResponse:
    state = state_of(request)
    # Not ready while draining (SIGTERM), nor while another worker process starts or stops:
    # a load balancer probing one worker then learns about all of them.
    ready = (
        state.policy.snapshot is not None
        and not request.app.ctx.drain.draining
        and all_workers_ready(request.app, state.settings.workers)
    )
    body = {"status": "ready" if ready else "not ready", "policy": commit_of(state)}
    return json_response(body, request_id_of(request), commit_of(state), 200 if ready else 503)


@bp.get("/admin/api/status")
async def status(request: Request) -> HTTPResponse:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    body: Status = {
        "policy": state.policy.status_dict(),
        "limits": state.limiter.status(),
        "credentials": state.pools.status(),
        "unavailable_routes": unusable_routes(state.policy.snapshot, state.pools),
        "unpriced_targets": (
            state.policy.snapshot.unpriced_targets() if state.policy.snapshot else []
        ),
        "events": {"viewers": state.events.subscriber_count, "last_id": state.events.last_id},
        "version": version("modelgate"),
        "uptime_s": round(time.time() - state.started_at, 1),
    }
    return json_response(body, request_id_of(request), commit_of(state))
