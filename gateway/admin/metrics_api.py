"""GET /metrics: Prometheus text (or OpenMetrics when asked), admin token as Bearer."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.admin.common import commit_of, refused, state_of
from gateway.responses import base_headers, request_id_of


async def metrics(request: Request) -> HTTPResponse:
    denied = refused(request)
    if denied is not None:
        return denied
    state = state_of(request)
    body, content_type = state.recorder.metrics.render(request.headers.get("accept"))
    headers = base_headers(request_id_of(request), commit_of(state))
    return HTTPResponse(body, headers=headers, content_type=content_type)
