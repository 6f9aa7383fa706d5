"""Stages ④ to ⑥: build the upstream body per target, open it, relay or translate the answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson
from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, Protocol, UpstreamFailed
from gateway.exchange import Exchange
from gateway.passthrough import PassthroughStream
from gateway.responses import JSON
from gateway.state import AppState
from gateway.streaming import stream_error_event
from gateway.translation import Translation
from gateway.upstream.endpoints import FAMILY, Op
from gateway.usage.tokens import read_usage
from policies.snapshot import ResolvedRoute, Target

log = logging.getLogger("modelgate.serve")

CLIENT_CLOSED = 499
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _wants_usage_chunk(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class _Bodies:
    """Upstream bodies per target: the client's bytes when nothing needs to change."""

    def __init__(
        self, raw: bytes, body: dict[str, Any], protocol: Protocol, op: Op, stream: bool
    ) -> None:
        self.raw, self.body, self.protocol, self.op, self.stream = raw, body, protocol, op, stream
        self.hide_usage_chunk = False
        self.translation: Translation | None = None

    def __call__(self, target: Target) -> bytes:
        family = FAMILY[target.provider.type]
        if (
            family is not self.protocol
            or (self.op is Op.RESPONSES
            and target.provider.type != "openai")
        ):
            self.translation = Translation.start(
                self.protocol, family, self.op, self.body, self.stream
            )
            return self.translation.upstream_body(target.upstream_model)
        self.translation = None
        changes: dict[str, Any] = {}
        if family is not Protocol.GEMINI and self.body.get("model") != target.upstream_model:
            changes["model"] = target.upstream_model
        if (
            family is Protocol.OPENAI
            and self.stream
            and self.op in (Op.CHAT, Op.COMPLETIONS)
            and not _wants_usage_chunk(self.body)
        ):
            # Usage is what quotas count: ask for it, and hide the extra chunk from the client.
            options = self.body.get("stream_options")
            base = options if isinstance(options, dict) else {}
            changes["stream_options"] = {**base, "include_usage": True}
            self.hide_usage_chunk = True
        else:
            self.hide_usage_chunk = False
        if not changes:
            return self.raw
        return orjson.dumps({**self.body, **changes})


async def serve_call(
    request: Request,
    state: AppState,
    ex: Exchange,
    op: Op,
    body: dict[str, Any],
    route: ResolvedRoute,
    stream: bool,
    headers: dict[str, str],
) -> HTTPResponse | None:
    bodies = _Bodies(request.body, body, ex.protocol, op, stream)
    opened = await state.dispatcher.open(route, op, stream, bodies)
    ex.provider, ex.target = opened.target.provider_name, opened.target.label
    upstream = opened.response
    family = FAMILY[opened.target.provider.type]
    translation = bodies.translation
    if not stream:
        try:
            content = await upstream.aread()
        except httpx.HTTPError as exc:
            raise UpstreamFailed(
                f"The upstream for '{route.model}' broke off its answer ({type(exc).__name__})."
            ) from None
        finally:
            await upstream.aclose()
        ex.mark_first_byte()
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise UpstreamFailed(
                f"The upstream for '{route.model}' sent a non-JSON answer."
            ) from None
        read_usage(family, parsed, ex.usage)
        ex.status = upstream.status_code
        if translation is not None:
            content = translation.client_body(parsed, route.model)
        content_type = upstream.headers.get("content-type", JSON) if translation is None else JSON
        return HTTPResponse(
            content, status=upstream.status_code, headers=headers, content_type=content_type
        )
    await _relay_stream(request, ex, upstream, family, bodies, route, headers)
    return None


async def _relay_stream(
    request: Request,
    ex: Exchange,
    upstream: httpx.Response,
    family: Protocol,
    bodies: _Bodies,
    route: ResolvedRoute,
    headers: dict[str, str],
) -> None:
    translation = bodies.translation
    scanner = PassthroughStream(family, bodies.hide_usage_chunk)
    headers.update(SSE_HEADERS)
    response = await request.respond(headers=headers, content_type="text/event-stream")
    ex.status = 200
    try:
        async for chunk in upstream.aiter_raw():
            ex.mark_first_byte()
            out = scanner.feed(chunk)
            if out and translation is not None:
                out = translation.client_stream_bytes(out, route.model)
            if out:
                await response.send(out)
        tail = scanner.finish()
        if translation is not None:
            tail = translation.client_stream_bytes(
                tail, route.model
            ) + translation.client_stream_end(route.model)
        if tail:
            await response.send(tail)
    except httpx.HTTPError as exc:
        ex.status, ex.error = 502, "upstream_stream_broken"
        log.warning("upstream stream broke off", extra={"request_id": ex.request_id})
        err = UpstreamFailed(
            f"The upstream for '{route.model}' broke off the stream ({type(exc).__name__}); "
            "the answer is incomplete."
        )
        await _send_quietly(response, stream_error_event(ex.protocol, err))
    except (asyncio.CancelledError, ConnectionError):
        ex.status, ex.error = CLIENT_CLOSED, "client_closed"
        raise
    except GatewayError as err:
        ex.status, ex.error = err.status_code, err.kind
        await _send_quietly(response, stream_error_event(ex.protocol, err))
    finally:
        ex.usage = scanner.usage
        await upstream.aclose()
    await response.eof()


async def _send_quietly(response: Any, data: bytes) -> None:
    try:
        await response.send(data)
    except Exception:  # the client may be gone too; nothing more to tell it
        log.debug("could not deliver the stream error event")
