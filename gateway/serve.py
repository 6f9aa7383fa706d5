"""Stages ④ to ⑥: build the upstream body per target, open it, relay or translate the answer."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, Protocol, UpstreamFailed
from gateway.exchange import Exchange
from gateway.json_array_stream import JSON_ARRAY_CONTENT_TYPE, JsonArrayFraming
from gateway.passthrough import PassthroughStream
from gateway.protocols import ADAPTERS, PROTOCOL_OF_TYPE
from gateway.responses import JSON, SSE_HEADERS
from gateway.state import AppState
from gateway.translation import LARGE_BODY_BYTES, TranslatedAhead, Translation, dump_body
from gateway.upstream.dispatch import Opened
from gateway.upstream.endpoints import upstream_op
from gateway.upstream.transport import read_body
from gateway.usage.tokens import LARGE_ANSWER, usage_by_search
from gateway.usage_estimates import estimate_unreported
from gateway.vocabulary import Op
from policies.snapshot import ResolvedRoute, Target

log = logging.getLogger("modelgate.serve")

CLIENT_CLOSED = 499
DROPPED_HEADER = "x-modelgate-dropped-params"
"""Names the hints a translated request's provider could not carry (translate.policy)."""

Serve = Callable[
    [Request, AppState, Exchange, Op, dict[str, Any], ResolvedRoute, bool, dict[str, str]],
    Awaitable[HTTPResponse | None],
]
"""Stages ④ to ⑥ for one endpoint: (request, state, exchange, op, body, route, stream, headers)."""


def _wants_usage_chunk(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class _Bodies:
    """Upstream bodies per target: the client's bytes when nothing needs to change and the
    gateway read nothing in them (Gemini's model and streaming are in the URL)."""

    def __init__(
        self,
        raw: bytes,
        body: dict[str, Any],
        protocol: Protocol,
        op: Op,
        stream: bool,
        strict: bool = False,
    ) -> None:
        self.raw, self.body, self.protocol, self.op, self.stream = raw, body, protocol, op, stream
        self.strict = strict
        self.hide_usage_chunk = False
        self.translation: Translation | None = None
        self.ahead = TranslatedAhead()

    async def prepare(self, targets: tuple[Target, ...]) -> None:
        """A large body is translated off the loop, for every target that needs it."""
        if len(self.raw) > LARGE_BODY_BYTES:
            wanted = {
                (PROTOCOL_OF_TYPE[t.provider.type], t.upstream_model)
                for t in targets
                if self._translates(t)
            }
            if wanted:
                await self.ahead.translate(
                    self.protocol, self.op, self.body, self.stream, wanted, self.strict
                )

    def _translates(self, target: Target) -> bool:
        family = PROTOCOL_OF_TYPE[target.provider.type]
        return (
            family is not self.protocol
            # Responses to a type without them go as its chat call (see upstream_op).
            or upstream_op(self.op, target.provider.type) is not self.op
            # Gemini embeddings name the model inside the body, and embedContent goes
            # upstream as batchEmbedContents: never bytes as they came.
            or (self.op is Op.EMBEDDINGS and family is Protocol.GEMINI)
        )

    def __call__(self, target: Target) -> bytes:
        family = PROTOCOL_OF_TYPE[target.provider.type]
        if self._translates(target):
            self.hide_usage_chunk = False
            self.translation = Translation.start(
                self.protocol, family, self.op, self.body, self.stream, self.strict
            )
            return self.ahead.upstream_body(self.translation, target.upstream_model)
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
        if not changes and family is Protocol.GEMINI:
            return self.raw
        # Written anew even when nothing changed: parsers differ on duplicate keys (orjson
        # keeps the last, others the first), so in the client's bytes an upstream could read
        # another model, or `stream`, than the one the gateway checked and relays (about as
        # fast as scanning the bytes for duplicates would be: ~1 ms per MB).
        return dump_body({**self.body, **changes})


async def serve_call(
    request: Request,
    state: AppState,
    ex: Exchange,
    op: Op,
    body: dict[str, Any],
    route: ResolvedRoute,
    stream: bool,
    headers: dict[str, str],
    *,
    json_array: bool = False,
) -> HTTPResponse | None:
    strict = route.route.translation == "strict"
    bodies = _Bodies(request.body, body, ex.protocol, op, stream, strict)
    await bodies.prepare(route.targets)
    opened = await state.dispatcher.open(route, op, stream, bodies, ex.forwarded)
    ex.provider, ex.target = opened.target.provider_name, opened.target.label
    upstream = opened.response
    family = PROTOCOL_OF_TYPE[opened.target.provider.type]
    adapter = ADAPTERS[family]
    translation = bodies.translation
    if translation is not None and translation.dropped:
        headers[DROPPED_HEADER] = ", ".join(sorted(translation.dropped))
        state.recorder.metrics.dropped_params(translation.dropped)
    if not stream:
        content = await read_answer(opened, route.model)
        ex.mark_first_byte()
        # A large pass-through answer is searched for its usage, not parsed: the rest only
        # needs the answer itself when it is translated (then `found` is all of it).
        found = (
            usage_by_search(adapter.usage_key, content)
            if translation is None and len(content) > LARGE_ANSWER
            else None
        )
        if found is None:
            found = parse_answer(content, route.model)
        adapter.read_usage(found, ex.usage)
        if ex.usage.total == 0:  # reported none: quotas count an estimate, never nothing
            estimate_unreported(ex.usage, op, ex.protocol, body, request.body, content)
        ex.status = upstream.status_code
        if translation is not None:
            content = _translated_body(translation, found, route.model)
        return HTTPResponse(
            content, status=upstream.status_code, headers=headers, content_type=JSON
        )
    client = (
        None  # the pass-through hot path: bytes as they came
        if translation is None and not json_array
        else _ClientStream(translation, route.model, JsonArrayFraming() if json_array else None)
    )
    await _relay_stream(request, ex, opened, family, bodies, route, headers, client)
    return None


def _translated_body(translation: Translation, parsed: Any, model: str) -> bytes:
    try:
        return translation.client_body(parsed, model)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise UpstreamFailed(
            f"The upstream for '{model}' sent an answer the gateway cannot read."
        ) from None


serve_json_array_stream: Serve = functools.partial(serve_call, json_array=True)
"""Gemini's streamGenerateContent without alt=sse: the stream as one JSON array."""


class _ClientStream:
    """What becomes of complete upstream events on their way to a client (not pass-through)."""

    __slots__ = ("framing", "model", "translation")

    def __init__(
        self, translation: Translation | None, model: str, framing: JsonArrayFraming | None
    ) -> None:
        self.translation, self.model, self.framing = translation, model, framing

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.framing is None else JSON_ARRAY_CONTENT_TYPE

    def feed(self, events: bytes) -> bytes:
        if self.translation is not None:
            events = self.translation.client_stream_bytes(events, self.model)
        if self.framing is not None and events:
            events = self.framing.feed(events)
        return events

    def finish(self, tail: bytes) -> bytes:
        if self.translation is not None:
            tail = self.translation.client_stream_bytes(tail, self.model)
            tail += self.translation.client_stream_end(self.model)
        if self.framing is not None:
            tail = self.framing.feed(tail) + self.framing.close()
        return tail

    def error(self, event: bytes) -> bytes:
        if self.framing is not None:
            return self.framing.feed(event) + self.framing.close()
        return event


async def read_answer(opened: Opened, model: str) -> bytes:
    """A whole upstream answer, read by the attempt's deadline; its connection closed after."""
    try:
        return await read_body(opened.response, opened.deadline)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise UpstreamFailed(broke_off(opened, model, exc, "its answer")) from None
    finally:
        await opened.response.aclose()


def parse_answer(content: bytes, model: str) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamFailed(f"The upstream for '{model}' sent a non-JSON answer.") from None


def broke_off(opened: Opened, model: str, exc: Exception, what: str) -> str:
    """Why the upstream's answer ended early, in the caller's words (no upstream details)."""
    provider = opened.target.provider
    if isinstance(exc, TimeoutError):
        cause = f"it took longer than its {provider.timeout_s:g} s timeout"
    elif isinstance(exc, httpx.ReadTimeout):
        idle = provider.idle_timeout_s or provider.first_byte_timeout_s or provider.timeout_s
        cause = f"it sent nothing for {idle:g} s"
    else:
        cause = type(exc).__name__
    return f"The upstream for '{model}' broke off {what} ({cause})."


async def _relay_stream(
    request: Request,
    ex: Exchange,
    opened: Opened,
    family: Protocol,
    bodies: _Bodies,
    route: ResolvedRoute,
    headers: dict[str, str],
    client: _ClientStream | None,
) -> None:
    upstream = opened.response
    responses = bodies.op is Op.RESPONSES and bodies.translation is None
    scanner = PassthroughStream(family, bodies.hide_usage_chunk, responses)
    ex.usage = scanner.usage  # filled in place as usage events go by
    headers.update(SSE_HEADERS)
    content_type = "text/event-stream" if client is None else client.content_type
    response = await request.respond(headers=headers, content_type=content_type)
    ex.status = 200
    read_whole = False
    try:
        # One timer for the attempt's total timeout; the idle timeout is the transport's.
        async with asyncio.timeout_at(opened.deadline):
            async for chunk in upstream.aiter_raw():
                ex.mark_first_byte()
                out = scanner.feed(chunk)
                if scanner.ended:
                    await _settle(ex)  # before the client can see the end and ask again
                if out and client is not None:
                    out = client.feed(out)
                if out:
                    await response.send(out)
            tail = scanner.finish()
            read_whole = True
            # A translated stream's terminal event (message_stop, [DONE], response.completed,
            # Gemini's finishReason chunk) is only made here, after the upstream's end: the
            # count is settled before the client can see it.
            await _settle(ex)
            if client is not None:
                tail = client.finish(tail)
            if tail:
                await response.send(tail)
    except (httpx.HTTPError, TimeoutError) as exc:
        ex.status, ex.error = 502, "upstream_stream_broken"
        log.warning("upstream stream broke off", extra={"request_id": ex.request_id})
        message = broke_off(opened, route.model, exc, "the stream")
        err = UpstreamFailed(message[:-1] + "; the answer is incomplete.")
        await _send_quietly(response, _error_bytes(client, ex.protocol, err))
    except (asyncio.CancelledError, ConnectionError):
        # A client that hangs up after the answer's end (or, translated, once the upstream
        # was read whole and its end is on its way) got all of it.
        if not (scanner.ended or read_whole):
            ex.status, ex.error = CLIENT_CLOSED, "client_closed"
        raise
    except GatewayError as err:
        ex.status, ex.error = err.status_code, err.kind
        await _send_quietly(response, _error_bytes(client, ex.protocol, err))
    finally:
        scanner.usage_of_unfinished(len(request.body) // 4)
        await upstream.aclose()
    await response.eof()


async def _settle(ex: Exchange) -> None:
    """Count the usage; shielded, so that neither the total timeout nor a client that leaves
    can cut the count short (the pipeline's own settle then finds it done)."""
    if ex.settle is not None:
        await asyncio.shield(ex.settle_now())


def _error_bytes(client: _ClientStream | None, protocol: Protocol, err: GatewayError) -> bytes:
    event = ADAPTERS[protocol].stream_error_event(err)
    return event if client is None else client.error(event)


async def _send_quietly(response: Any, data: bytes) -> None:
    try:
        await response.send(data)
    except Exception:  # the client may be gone too; nothing more to tell it
        log.debug("could not deliver the stream error event")
