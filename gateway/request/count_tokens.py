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

from typing import Any

import orjson
from sanic import HTTPResponse

from gateway.errors import BadRequest, Protocol, UpstreamFailed
from gateway.protocols import ADAPTER_OF_TYPE, ADAPTERS, PROTOCOL_OF_TYPE
from gateway.protocols.gemini import GEMINI
from gateway.request.call import Call
from gateway.request.plan import Plan
from gateway.request.translation import dump_body
from gateway.responses import JSON, Response
from gateway.translate import anthropic_messages, gemini_content
from gateway.translate.canonical import (
    ChatRequest,
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from gateway.vocabulary import Op
from policies.snapshot import Target

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


def count_plan(call: Call, target: Target) -> Plan:
    """The upstream count call to `target`: the client's bytes when nothing needs to change,
    else its body with the model set, or translated to the other protocol's count body."""
    family = PROTOCOL_OF_TYPE[target.provider.type]
    model = target.upstream_model
    answer = None if family is call.protocol else CountTranslation(call.protocol, family)
    if family is call.protocol is Protocol.ANTHROPIC:
        body = call.body if call.body.get("model") == model else {**call.body, "model": model}
    elif family is call.protocol is Protocol.GEMINI:
        inner = call.body.get("generateContentRequest")
        body = (
            {**call.body, "generateContentRequest": {**inner, "model": GEMINI.body_model(model)}}
            if isinstance(inner, dict)
            else call.body
        )
    elif family is Protocol.ANTHROPIC:
        full = anthropic_messages.request_from_canonical(
            read_request(call.protocol, call.body), model
        )
        body = {k: full[k] for k in _ANTHROPIC_COUNT_FIELDS if k in full}
    else:
        request = read_request(call.protocol, call.body)
        generate = gemini_content.request_from_canonical(request, model)
        generate.pop("generationConfig", None)
        body = {"generateContentRequest": {"model": GEMINI.body_model(model), **generate}}
    finished = ADAPTERS[family].finish_body(target.provider, Op.COUNT_TOKENS, body)
    if finished is call.body:
        return Plan(Op.COUNT_TOKENS, call.raw, answer)
    return Plan(Op.COUNT_TOKENS, dump_body(finished), answer)


class CountTranslation:
    """An upstream's count answer in the other protocol's shape."""

    __slots__ = ("client", "provider")

    def __init__(self, client: Protocol, provider: Protocol) -> None:
        self.client, self.provider = client, provider

    def client_body(self, upstream: Any, client_model: str) -> bytes:
        return orjson.dumps(ADAPTERS[self.client].count_answer(_tokens_of(self.provider, upstream)))


def counting_targets(targets: tuple[Target, ...]) -> tuple[Target, ...]:
    """The targets whose provider can count tokens, in the route's order."""
    return tuple(t for t in targets if ADAPTER_OF_TYPE[t.provider.type].can_count_tokens)


def estimated_answer(call: Call, headers: dict[str, str]) -> HTTPResponse:
    """The gateway's own estimate, when no target of the route can count."""
    tokens = estimate(read_request(call.protocol, call.body))
    headers[COUNT_SOURCE_HEADER] = "estimate"
    answer = orjson.dumps(ADAPTERS[call.protocol].count_answer(tokens))
    return Response(answer, headers=headers, content_type=JSON)


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
