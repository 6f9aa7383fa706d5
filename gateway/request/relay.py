"""Stages ⑤ and ⑥: open the upstream with each target's plan, and relay its answer.

One relay with its variants, chosen by the call:
- a whole body (pass-through, translated, or a token count converted between shapes);
- a stream, as SSE or, for Gemini's streamGenerateContent without alt=sse, as one JSON
  array; passed through byte for byte when the client speaks the upstream's dialect, else
  translated event by event.
A count-tokens call is planned by gateway.request.count_tokens, and answered by the gateway
itself when no target can count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import httpx
import orjson
from sanic import HTTPResponse, Request

from gateway.errors import GatewayError, Protocol, UpstreamFailed
from gateway.pricing import COST_HEADER, usd_text
from gateway.protocols import ADAPTER_OF_TYPE, ADAPTERS, ProtocolAdapter
from gateway.request import count_tokens
from gateway.request.call import Call
from gateway.request.client_writer import ClientWriter
from gateway.request.exchange import Exchange
from gateway.request.json_array_stream import JSON_ARRAY_CONTENT_TYPE, JsonArrayFraming
from gateway.request.passthrough import PassthroughStream
from gateway.request.plan import Plan, Plans, plan
from gateway.request.settlement import Settlement
from gateway.request.translation import Translation
from gateway.request.usage_estimates import estimate_unreported
from gateway.responses import JSON, SSE_HEADERS, Response
from gateway.state import AppState
from gateway.translate import StreamTranslator
from gateway.upstream.dispatch import Opened
from gateway.upstream.http1 import ResponseBody
from gateway.upstream.transport import read_body
from gateway.usage.tokens import LARGE_ANSWER, Usage, usage_by_search
from gateway.vocabulary import Op

log = logging.getLogger("modelgate.relay")

CLIENT_CLOSED = 499
DROPPED_HEADER = "x-modelgate-dropped-params"
"""Names the hints a translated request's provider could not carry (translate.policy)."""


async def relay(
    request: Request,
    state: AppState,
    call: Call,
    ex: Exchange,
    settlement: Settlement,
    headers: dict[str, str],
) -> HTTPResponse | None:
    """Open the first target that answers, and give the client its answer."""
    route, planner = call.route, plan
    if call.op is Op.COUNT_TOKENS:
        counting = count_tokens.counting_targets(route.targets)
        if not counting:
            return count_tokens.estimated_answer(call, headers)
        route, planner = dataclasses.replace(route, targets=counting), count_tokens.count_plan
    plans = Plans(call, planner)
    await plans.prepare(route.targets)
    opened = await state.dispatcher.open(route, call.stream, plans, call.forwarded)
    ex.opened(opened.target)
    planned = plans(opened.target)
    if planned.dropped:
        headers[DROPPED_HEADER] = ", ".join(sorted(planned.dropped))
        state.recorder.metrics.dropped_params(planned.dropped)
    adapter = ADAPTER_OF_TYPE[opened.target.provider.type]
    if call.op is Op.COUNT_TOKENS:
        headers[count_tokens.COUNT_SOURCE_HEADER] = "upstream"
    if not call.stream:
        return await _whole(call, ex, settlement, opened, planned, adapter, headers)
    await _stream(request, call, ex, settlement, opened, planned, adapter, headers)
    return None


# -- a whole body ------------------------------------------------------------------------


async def _whole(
    call: Call,
    ex: Exchange,
    settlement: Settlement,
    opened: Opened,
    planned: Plan,
    adapter: ProtocolAdapter,
    headers: dict[str, str],
) -> HTTPResponse:
    content = await read_answer(opened, call.model)
    ex.mark_first_byte()
    status = opened.response.status_code
    ex.answered(status)
    found: Any = None
    if call.op is not Op.COUNT_TOKENS:  # counting generates nothing: it costs no tokens
        # A large pass-through answer is searched for its usage, not parsed: the rest only
        # needs the answer itself when it is translated (then `found` is all of it).
        if planned.answer is None and len(content) > LARGE_ANSWER:
            found = usage_by_search(adapter.usage_key, content)
        if found is None:
            found = parse_answer(content, call.model)
        adapter.read_usage(found, ex.usage)
        if ex.usage.total == 0:  # reported none: quotas count an estimate, never nothing
            estimate_unreported(ex.usage, call.op, call.protocol, call.body, call.raw, content)
    if planned.answer is not None:
        if found is None:
            found = parse_answer(content, call.model)
        try:
            content = planned.answer.client_body(found, call.model)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            raise UpstreamFailed(
                f"The upstream for '{call.model}' sent an answer the gateway cannot read."
            ) from None
    await settlement.settle()  # idempotent (the pipeline's own call then waits on this one)
    if settlement.cost_micros is not None:
        headers[COST_HEADER] = usd_text(settlement.cost_micros)
    return Response(content, status=status, headers=headers, content_type=JSON)


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


# -- a stream ----------------------------------------------------------------------------


class _Translated:
    """A translated stream: upstream bytes to the client's events, usage read on the way by
    the provider's adapter as in a passed-through stream."""

    __slots__ = ("_prompt_estimate", "_reported", "_translator", "usage")

    ended = False
    """Its end is only made by finish(), after the upstream's."""

    def __init__(self, translator: StreamTranslator, usage: Usage, prompt_estimate: int) -> None:
        self._translator, self.usage = translator, usage
        self._prompt_estimate = prompt_estimate
        self._reported = False

    def feed(self, chunk: bytes) -> bytes:
        return self._translator.feed(chunk)

    def finish(self) -> bytes:
        """The client's last events, once the upstream has ended; usage is final after it
        (they are sent only after the count is settled)."""
        tail = self._translator.close()
        self._reported = self._translator.finish_reason is not None
        self.cut_short()
        return tail

    def cut_short(self) -> None:
        """An answer that did not end reported no final usage: count the prompt as
        estimated and one token per event read, never less than what was reported."""
        if not self._reported:
            self.usage.prompt_tokens = self.usage.prompt_tokens or self._prompt_estimate
            self.usage.completion_tokens = max(
                self.usage.completion_tokens, self._translator.events
            )


class _PassedThrough:
    """A same-dialect stream: complete events forwarded as they came (see passthrough.py)."""

    __slots__ = ("_prompt_estimate", "_scanner")

    def __init__(self, scanner: PassthroughStream, prompt_estimate: int) -> None:
        self._scanner, self._prompt_estimate = scanner, prompt_estimate

    @property
    def ended(self) -> bool:
        return self._scanner.ended

    def feed(self, chunk: bytes) -> bytes:
        return self._scanner.feed(chunk)

    def finish(self) -> bytes:
        tail = self._scanner.finish()
        self.cut_short()  # nothing when its closing event came
        return tail

    def cut_short(self) -> None:
        self._scanner.usage_of_unfinished(self._prompt_estimate)


def _stream_of(
    call: Call, planned: Plan, adapter: ProtocolAdapter, usage: Usage
) -> _Translated | _PassedThrough:
    if isinstance(planned.answer, Translation):
        translator = planned.answer.client_stream(
            call.model, adapter.stream_parser(), lambda data: adapter.read_usage(data, usage)
        )
        return _Translated(translator, usage, call.prompt_estimate)
    responses = planned.op is Op.RESPONSES
    scanner = PassthroughStream(adapter.protocol, planned.hide_usage_chunk, responses, usage)
    return _PassedThrough(scanner, call.prompt_estimate)


async def _stream(
    request: Request,
    call: Call,
    ex: Exchange,
    settlement: Settlement,
    opened: Opened,
    planned: Plan,
    adapter: ProtocolAdapter,
    headers: dict[str, str],
) -> None:
    upstream = opened.response
    stream = _stream_of(call, planned, adapter, ex.usage)
    framing = JsonArrayFraming() if call.json_array else None
    headers.update(SSE_HEADERS)
    content_type = JSON_ARRAY_CONTENT_TYPE if framing is not None else "text/event-stream"
    response = await request.respond(Response(headers=headers, content_type=content_type))
    ex.answered(200)
    read_whole = False
    drain = request.app.ctx.drain
    try:
        # One timer for the attempt's total timeout, held to the drain deadline of a
        # shutdown (gateway/drain.py); the idle timeout is the transport's.
        async with asyncio.timeout_at(opened.deadline) as timer, drain.bounding(timer):
            body = upstream.stream
            writer = await ClientWriter.start(request, response)
            if isinstance(body, ResponseBody) and writer is not None:
                pipe = _Pipe(stream, framing, writer, ex, settlement)
                await body.relay(pipe.take, pipe.catch_up)
            else:
                async for chunk in upstream.aiter_raw():
                    ex.mark_first_byte()
                    out = stream.feed(chunk)
                    if stream.ended:
                        await settlement.settle()  # before the client can see the end
                    if out and framing is not None:
                        out = framing.feed(out)
                    if out:
                        await response.send(out)
            tail = stream.finish()
            read_whole = True
            # A translated stream's terminal event (message_stop, [DONE], response.completed,
            # Gemini's finishReason chunk) is only made here, after the upstream's end: the
            # count is settled before the client can see it.
            await settlement.settle()
            if framing is not None:
                tail = framing.feed(tail) + framing.close()
            if tail:
                await response.send(tail)
    except (httpx.HTTPError, TimeoutError) as exc:
        ex.failed(502, "upstream_stream_broken")
        log.warning("upstream stream broke off", extra={"request_id": ex.request_id})
        message = broke_off(opened, call.model, exc, "the stream")
        cut = drain.cut(call.model)  # by a shutdown's drain deadline, else by the upstream
        err = cut or UpstreamFailed(message[:-1] + "; the answer is incomplete.")
        await _send_quietly(response, _error_bytes(framing, call.protocol, err))
    except (asyncio.CancelledError, ConnectionError):
        # A client that hangs up after the answer's end (or, translated, once the upstream
        # was read whole and its end is on its way) got all of it.
        if not (stream.ended or read_whole):
            ex.failed(CLIENT_CLOSED, "client_closed")
        raise
    except GatewayError as err:
        ex.refused(err)
        await _send_quietly(response, _error_bytes(framing, call.protocol, err))
    finally:
        if not read_whole:
            stream.cut_short()
        await upstream.aclose()
    await response.eof()


class _Pipe:
    """A stream relayed from the upstream connection's data callback to the client's
    connection (ResponseBody.relay, ClientWriter): the same steps as the loop over
    `aiter_raw`, with what needs awaiting (the client's drain, settling before the end,
    raising what failed) left to `catch_up`, in the request's task."""

    __slots__ = ("_ex", "_failure", "_framing", "_held", "_settlement", "_stream", "_writer")

    def __init__(
        self,
        stream: _Translated | _PassedThrough,
        framing: JsonArrayFraming | None,
        writer: ClientWriter,
        ex: Exchange,
        settlement: Settlement,
    ) -> None:
        self._stream, self._framing, self._writer = stream, framing, writer
        self._ex, self._settlement = ex, settlement
        self._held: bytes | None = None
        self._failure: BaseException | None = None

    def take(self, chunk: bytes) -> bool:
        try:
            self._ex.mark_first_byte()
            out = self._stream.feed(chunk)
            if self._stream.ended and not self._settlement.settled:
                self._held = out  # the end: only once the count is settled
                return False
            return self._send(out)
        except BaseException as exc:  # raised again in the request's task (catch_up)
            self._failure = exc
            return False

    def _send(self, out: bytes) -> bool:
        if out and self._framing is not None:
            out = self._framing.feed(out)
        return self._writer.write(out) if out else True

    async def catch_up(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._held is not None:
            await self._settlement.settle()  # before the client can see the end
            held, self._held = self._held, None
            self._send(held)
        await self._writer.drained()


def _error_bytes(framing: JsonArrayFraming | None, protocol: Protocol, err: GatewayError) -> bytes:
    event = ADAPTERS[protocol].stream_error_event(err)
    return event if framing is None else framing.feed(event) + framing.close()


async def _send_quietly(response: Any, data: bytes) -> None:
    try:
        await response.send(data)
    except Exception:  # the client may be gone too; nothing more to tell it
        log.debug("could not deliver the stream error event")
