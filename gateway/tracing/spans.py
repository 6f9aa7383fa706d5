"""The spans of governed requests: one per request (SERVER), a child per upstream attempt
(CLIENT), the W3C trace context continued from the client and passed upstream.

The cost when tracing is off is one module-global check per request and one context-variable
read per attempt: no span object, no attribute. When it is on, the SDK's sampler decides once
per request, when its span starts. A request it drops costs that decision and one header:
its attempts get no span of their own (their `traceparent` names the request's span, flagged
unsampled, as W3C asks of a context passed on), and nothing is described, ended or exported.
A sampled request's attributes are set once, from the request's record, after the answer
(the loop's next turn).

Trace context from a client is read only from a `traceparent` header the SDK's W3C propagator
accepts (one header, its exact grammar, no all-zero ids); anything else starts a new trace.
The client's header is never forwarded: upstreams get a `traceparent` written from the
attempt's own span context (lowercase hex and dashes only), and no `tracestate`.
Attributes carry ids, names, counts and costs: never a prompt, a key, or an upstream URL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

import httpx
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.tracing import conventions as attr
from gateway.tracing.conventions import operation_name, provider_name

if TYPE_CHECKING:  # the request path imports this module: no cycle through its types
    from sanic import Request

    from gateway.request.exchange import Exchange
    from policies.snapshot import Target

__all__ = [
    "RequestTrace",
    "end_request",
    "install",
    "note_route",
    "start_request",
    "traced_send",
    "unsampled_parent",
]

_tracer: Tracer | None = None
_current: ContextVar[RequestTrace | None] = ContextVar("modelgate_request_trace", default=None)
_propagator = TraceContextTextMapPropagator()


def install(tracer: Tracer | None) -> None:
    """This process's tracer (None: tracing off, the default)."""
    global _tracer
    _tracer = tracer


class RequestTrace:
    """One governed request's span, and what its attempts learn for it."""

    __slots__ = (
        "attempts",
        "context",
        "operation",
        "provider_kind",
        "recording",
        "response_model",
        "route",
        "span",
        "token",
        "tracer",
        "unsampled_traceparent",
    )

    def __init__(self, tracer: Tracer, span: Span, path: str) -> None:
        self.tracer, self.span = tracer, span
        self.recording = span.is_recording()
        """Sampled: the request and its attempts are described and exported."""
        self.operation = operation_name(path) if self.recording else ""
        self.context: Context | None = set_span_in_context(span) if self.recording else None
        """The parent of the attempts' spans (sampled requests only)."""
        self.unsampled_traceparent: str | None = None
        """What an unsampled request's attempts send upstream (made at the first)."""
        self.attempts = 0
        self.route: str | None = None
        self.response_model: str | None = None
        self.provider_kind: str | None = None
        self.token: Token[RequestTrace | None] | None = None


def start_request(request: Request) -> RequestTrace | None:
    """The request's span, current for its task (so the dispatcher finds it); None when
    tracing is off."""
    tracer = _tracer
    if tracer is None:
        return None
    parent = None
    sent = request.headers.getall("traceparent", [])
    if len(sent) == 1:  # W3C: more than one is invalid
        parent = _propagator.extract({"traceparent": sent[0]})
    span = tracer.start_span("gateway", context=parent, kind=SpanKind.SERVER)
    trace = RequestTrace(tracer, span, request.path)
    trace.token = _current.set(trace)
    return trace


def end_request(trace: RequestTrace, ex: Exchange, request: Request, commit: str | None) -> None:
    """End the span at this instant; its attributes are set on the loop's next turn, after
    Sanic has written a whole-body answer."""
    if trace.token is not None:
        _current.reset(trace.token)
        trace.token = None
    if not trace.recording:
        return  # not sampled: a non-recording span has nothing to end
    route = request.route.path if request.route is not None else None
    loop = asyncio.get_running_loop()
    loop.call_soon(_close, trace, ex, route, request.method, commit, time.time_ns())


def _close(
    trace: RequestTrace,
    ex: Exchange,
    http_route: str | None,
    method: str,
    commit: str | None,
    ended_ns: int,
) -> None:
    span = trace.span
    if span.is_recording():  # (the SDK's: False once ended)
        values: dict[str, str | int | float | bool | None] = {
            attr.OPERATION: trace.operation,
            attr.REQUEST_MODEL: ex.model,
            attr.RESPONSE_MODEL: trace.response_model,
            attr.PROVIDER: trace.provider_kind,
            attr.INPUT_TOKENS: ex.usage.prompt_tokens,
            attr.OUTPUT_TOKENS: ex.usage.completion_tokens,
            attr.KEY_ID: ex.key_id,
            attr.TEAM: ex.team,
            attr.ROUTE: trace.route,
            attr.POLICY_COMMIT: commit,
            attr.COST_USD: None if ex.cost_micros is None else ex.cost_micros / 1_000_000,
            attr.REQUEST_ID: ex.request_id,
            attr.STREAM: ex.stream,
            attr.PROVIDER_CONFIG: ex.provider,
            attr.TARGET: ex.target,
            attr.HTTP_ROUTE: "/" + http_route if http_route else None,
            "http.request.method": method,
            attr.HTTP_STATUS: ex.status,
            attr.ERROR_TYPE: ex.error,
        }
        span.set_attributes({k: v for k, v in values.items() if v is not None})
        span.update_name(f"{trace.operation} {ex.model}" if ex.model else trace.operation)
        if ex.status >= 500:
            span.set_status(StatusCode.ERROR, ex.error)
    span.end(ended_ns)


def note_route(name: str) -> None:
    """The routes.yaml route the request matched (the dispatcher knows it)."""
    trace = _current.get()
    if trace is not None:
        trace.route = name


def traced_send(
    client: httpx.AsyncClient, target: Target, request: httpx.Request
) -> Awaitable[httpx.Response]:
    """`client.send(request, stream=True)`, inside an attempt span when the request has a
    trace (its traceparent then goes upstream); the plain send when not."""
    trace = _current.get()
    if trace is None or not trace.recording:  # unsampled: its header is in (unsampled_parent)
        return client.send(request, stream=True)
    return _send_in_span(trace, client, target, request)


def unsampled_parent() -> str | None:
    """The `traceparent` an unsampled request sends upstream (its span's context, sampled
    flag off), to put among the headers before the request is built: setting it on a built
    httpx request costs more than the rest of the unsampled path; None otherwise."""
    trace = _current.get()
    if trace is None or trace.recording:
        return None
    return trace.unsampled_traceparent or _unsampled(trace)


def _unsampled(trace: RequestTrace) -> str:
    """The request span's own context, sampled flag off, in the SDK propagator's format."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=set_span_in_context(trace.span))
    trace.unsampled_traceparent = header = carrier["traceparent"]
    return header


async def _send_in_span(
    trace: RequestTrace, client: httpx.AsyncClient, target: Target, request: httpx.Request
) -> httpx.Response:
    trace.attempts += 1
    assert trace.context is not None
    span = trace.tracer.start_span(
        f"{trace.operation} {target.upstream_model}",
        context=trace.context,
        kind=SpanKind.CLIENT,
    )
    _propagator.inject(request.headers, context=set_span_in_context(span))
    try:
        response = await client.send(request, stream=True)
    except BaseException as exc:
        if span.is_recording():
            _describe_attempt(span, trace, target, request)
            failure = "timeout" if isinstance(exc, TimeoutError | asyncio.CancelledError) else None
            span.set_attribute(attr.ERROR_TYPE, failure or type(exc).__name__)
            span.set_status(StatusCode.ERROR)
        span.end()
        raise
    status = response.status_code
    if status < 400:
        trace.response_model = target.upstream_model
        trace.provider_kind = provider_name(target.provider.type)
    if span.is_recording():
        _describe_attempt(span, trace, target, request)
        span.set_attribute(attr.HTTP_STATUS, status)
        if status >= 400:
            span.set_attribute(attr.ERROR_TYPE, str(status))
            span.set_status(StatusCode.ERROR)
    span.end()
    return response


def _describe_attempt(
    span: Span, trace: RequestTrace, target: Target, request: httpx.Request
) -> None:
    url = request.url  # only its host and port: a path or query may hold a key
    span.set_attributes(
        {
            attr.OPERATION: trace.operation,
            attr.PROVIDER: provider_name(target.provider.type),
            attr.REQUEST_MODEL: target.upstream_model,
            attr.PROVIDER_CONFIG: target.provider_name,
            attr.TARGET: target.label,
            attr.ATTEMPT: trace.attempts,
            attr.SERVER_ADDRESS: url.host,
            attr.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
        }
    )
