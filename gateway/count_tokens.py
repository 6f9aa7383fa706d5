"""Counting a request's input tokens: Anthropic `count_tokens` and Gemini `countTokens`.

Decisions:
- Anthropic and Gemini providers count for real. The same protocol passes through with
  the model rewritten; between the two, the request is translated to the other's count
  endpoint (Gemini gets a `generateContentRequest`, so system prompt and tools count).
- OpenAI-type providers have no count endpoint. Only when no target of the route can count
  does the gateway answer itself, with an estimate (4 characters a token, 4 tokens a
  message, 800 an image: about OpenAI's cost of a 1024x1024 image), marked by the header
  `x-modelgate-token-count: estimate`. The answer has the client's shape either way.
- Among a route's targets, those that can count are tried in the route's order, with the
  usual retries and failover. Counting costs no quota tokens (it generates nothing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from sanic import HTTPResponse, Request

from gateway.errors import BadRequest, Protocol, UpstreamFailed
from gateway.exchange import Exchange
from gateway.protocols import ADAPTER_OF_TYPE, ADAPTERS, PROTOCOL_OF_TYPE
from gateway.protocols.gemini import GEMINI
from gateway.responses import JSON
from gateway.serve import parse_answer, read_answer
from gateway.state import AppState
from gateway.translate import anthropic_messages, gemini_content
from gateway.translate.canonical import (
    ChatRequest,
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from gateway.translation import dump_body
from gateway.vocabulary import Op
from policies.snapshot import ResolvedRoute, Target

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_IMAGE = 800
COUNT_SOURCE_HEADER = "x-modelgate-token-count"
"""Where a count came from: `upstream` or `estimate`."""
_ANTHROPIC_COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def read_request(protocol: Protocol, body: dict[str, Any]) -> ChatRequest:
    """A count request in the canonical form (validating it on the way)."""
    if protocol is Protocol.ANTHROPIC:
        # count_tokens takes no max_tokens; the messages reader wants one.
        return anthropic_messages.request_to_canonical({**body, "max_tokens": 1})
    inner = body.get("generateContentRequest")
    source = inner if isinstance(inner, dict) else body
    if not isinstance(source.get("contents"), list):
        raise BadRequest(
            "'contents' (or 'generateContentRequest.contents') is required.", param="contents"
        )
    return gemini_content.request_to_canonical(source)


class _CountBodies:
    """The upstream count body per target: the client's bytes when nothing needs to change."""

    def __init__(self, raw: bytes, body: dict[str, Any], protocol: Protocol) -> None:
        self.raw, self.body, self.protocol = raw, body, protocol

    def __call__(self, target: Target) -> bytes:
        family = PROTOCOL_OF_TYPE[target.provider.type]
        model = target.upstream_model
        if family is self.protocol is Protocol.ANTHROPIC:
            return self.raw if self.body.get("model") == model else self._with(model=model)
        if family is self.protocol is Protocol.GEMINI:
            inner = self.body.get("generateContentRequest")
            if not isinstance(inner, dict):
                return self.raw
            return self._with(generateContentRequest={**inner, "model": GEMINI.body_model(model)})
        request = read_request(self.protocol, self.body)
        if family is Protocol.ANTHROPIC:
            full = anthropic_messages.request_from_canonical(request, model)
            return dump_body({k: full[k] for k in _ANTHROPIC_COUNT_FIELDS if k in full})
        generate = gemini_content.request_from_canonical(request, model)
        generate.pop("generationConfig", None)
        return dump_body(
            {"generateContentRequest": {"model": GEMINI.body_model(model), **generate}}
        )

    def _with(self, **changes: Any) -> bytes:
        return dump_body({**self.body, **changes})


def _tokens_of(family: Protocol, upstream: Any) -> int:
    value = ADAPTERS[family].count_of(upstream)
    if value is None:
        raise UpstreamFailed("The upstream's token count answer had no count in it.")
    return value


def estimate(request: ChatRequest) -> int:
    """A provider-neutral estimate of a request's input tokens."""
    chars = sum(len(s) for s in request.system)
    images = 0
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, ToolCallPart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ToolResultPart):
                chars += sum(len(c.text) for c in part.content if isinstance(c, TextPart))
                images += sum(1 for c in part.content if isinstance(c, ImagePart))
            elif isinstance(part, ThinkingPart) and not part.redacted:
                chars += len(part.text)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(dump_body(tool.parameters))
    text_tokens = -(-chars // CHARS_PER_TOKEN)
    return text_tokens + TOKENS_PER_MESSAGE * len(request.messages) + TOKENS_PER_IMAGE * images


async def serve_count_tokens(
    request: Request,
    state: AppState,
    ex: Exchange,
    op: Op,
    body: dict[str, Any],
    route: ResolvedRoute,
    stream: bool,
    headers: dict[str, str],
) -> HTTPResponse:
    """Stages ④ to ⑥ of a count request (see the module's docstring)."""
    counting = tuple(t for t in route.targets if ADAPTER_OF_TYPE[t.provider.type].can_count_tokens)
    ex.stream = False
    if not counting:
        tokens = estimate(read_request(ex.protocol, body))
        headers[COUNT_SOURCE_HEADER] = "estimate"
        return HTTPResponse(
            orjson.dumps(ADAPTERS[ex.protocol].count_answer(tokens)),
            headers=headers,
            content_type=JSON,
        )
    bodies = _CountBodies(request.body, body, ex.protocol)
    countable = dataclasses.replace(route, targets=counting)
    opened = await state.dispatcher.open(countable, Op.COUNT_TOKENS, False, bodies, ex.forwarded)
    ex.provider, ex.target = opened.target.provider_name, opened.target.label
    family = PROTOCOL_OF_TYPE[opened.target.provider.type]
    content = await read_answer(opened, route.model)  # an upstream that stalls is cut off
    ex.mark_first_byte()
    ex.status = opened.response.status_code
    headers[COUNT_SOURCE_HEADER] = "upstream"
    if family is not ex.protocol:
        parsed = parse_answer(content, route.model)
        content = orjson.dumps(ADAPTERS[ex.protocol].count_answer(_tokens_of(family, parsed)))
    return HTTPResponse(content, status=ex.status, headers=headers, content_type=JSON)
