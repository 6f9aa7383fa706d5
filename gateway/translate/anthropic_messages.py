"""Anthropic messages <-> canonical (a request is read in anthropic_request.py, streams are
translated in anthropic_messages_stream.py).

Choices made where the protocols differ:
- ``max_tokens`` is required by Anthropic: 4096 (``DEFAULT_MAX_TOKENS``) when the client
  gave none.
- JSON output: ``json_schema`` uses Anthropic's native ``output_config.format``; plain
  ``json_object`` has no native mode, so a system instruction asks for one JSON object.
- ``temperature`` is clamped to Anthropic's 0..1 range.
- Thinking: a budget (or an OpenAI ``reasoning_effort``) becomes ``thinking.budget_tokens``,
  kept below ``max_tokens``; under Anthropic's 1024-token minimum thinking stays off.
  Thinking blocks go upstream only when signed (Anthropic rejects unsigned ones).
  Without a budget, a client that asks to see the reasoning gets the medium budget, since
  Anthropic shows thinking only when it is on.
- Tool ids are made to fit Anthropic's ``[a-zA-Z0-9_-]`` pattern.
- ``{"role": "system"}`` messages inside ``messages`` (accepted under Anthropic's betas, and
  sent by Claude Code) join ``system``, in order, like OpenAI system messages.
- Hints, semantics and unknown fields follow ``translate.policy``: ``cache_control`` markers
  and ``context_management`` are dropped and reported; ``seed`` and the penalties, which
  Anthropic lacks, too.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.translate import policy, server_tools
from gateway.translate.anthropic_messages_stream import (
    FINISH_FROM_ANTHROPIC,
    StreamDecoder,
    StreamEncoder,
    error_event,
    stop_reason,
    usage_from_canonical,
    usage_to_canonical,
)
from gateway.translate.anthropic_request import NAME, request_to_canonical
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from gateway.translate.wire import (
    loose_arguments,
    now,
    parse_arguments,
    refuse_extra,
    thinking_budget,
    unsupported,
)

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "error_event",
    "request_from_canonical",
    "request_to_canonical",
    "response_from_canonical",
    "response_to_canonical",
]

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_SAFE_ID = re.compile(r"[a-zA-Z0-9_-]+")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


# -- request, written for Anthropic ---------------------------------------------------------


def request_from_canonical(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    refuse_extra(req, NAME)
    if req.n is not None and req.n > 1:
        raise unsupported("'n' > 1 (several choices)", NAME, "Send n = 1.")
    for name in ("seed", "presence_penalty", "frequency_penalty", "metadata"):
        if getattr(req, name) is not None:
            policy.drop_field(req, name)
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens,
        "messages": _write_messages(req.messages),
    }
    system = list(req.system)
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        system.append(JSON_INSTRUCTION)
    elif rf is not None and rf.type == "json_schema":
        body["output_config"] = {"format": {"type": "json_schema", "schema": rf.schema or {}}}
    if len(system) == 1:
        body["system"] = system[0]
    elif system:
        body["system"] = [{"type": "text", "text": s} for s in system]
    if req.temperature is not None:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = req.stop
    _write_tools(req, body)
    native = server_tools.write(req, NAME)
    if native:
        body["tools"] = [*body.get("tools", ()), *native]
    budget = thinking_budget(req)
    if budget is None and req.show_thinking:
        budget = policy.EFFORT_BUDGETS["medium"]
    if budget == 0:
        body["thinking"] = {"type": "disabled"}
    elif budget is not None:
        budget = min(budget, max_tokens - 1)
        if budget >= MIN_THINKING_BUDGET:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.source == NAME:
        body.update(req.extra)
    if req.stream:
        body["stream"] = True
    return body


def _write_tools(req: ChatRequest, body: dict[str, Any]) -> None:
    if req.tools:
        tools = []
        for t in req.tools:
            tool: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
            if t.description:
                tool["description"] = t.description
            tools.append(tool)
        body["tools"] = tools
    tc = req.tool_choice
    choice: dict[str, Any] | None = None
    if tc is not None and (req.tools or tc.mode == "none"):
        kind = {"auto": "auto", "none": "none", "required": "any", "tool": "tool"}[tc.mode]
        choice = {"type": kind}
        if tc.mode == "tool":
            choice["name"] = tc.name
    if req.parallel_tool_calls is False and req.tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None and req.tools:
        body["tool_choice"] = choice


def _safe_id(value: str) -> str:
    return value if _SAFE_ID.fullmatch(value) else _UNSAFE.sub("_", value) or "call"


def _write_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        blocks = [b for b in (_write_part(p) for p in m.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    for msg in out:
        if msg["role"] == "user":
            # Anthropic wants a turn's tool results before anything else in it.
            msg["content"].sort(key=lambda b: b["type"] != "tool_result")
    return out


def _write_image(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        source = {"type": "base64", "media_type": p.media_type or "image/png", "data": p.data}
    else:
        source = {"type": "url", "url": p.url or ""}
    return {"type": "image", "source": source}


def _write_part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text} if p.text else None
    if isinstance(p, ImagePart):
        return _write_image(p)
    if isinstance(p, ToolCallPart):
        args = parse_arguments(p.arguments, p.id)
        return {"type": "tool_use", "id": _safe_id(p.id), "name": p.name, "input": args}
    if isinstance(p, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _safe_id(p.call_id)}
        if all(isinstance(c, TextPart) for c in p.content):
            block["content"] = "".join(c.text for c in p.content)  # type: ignore[union-attr]
        else:
            block["content"] = [
                {"type": "text", "text": c.text} if isinstance(c, TextPart) else _write_image(c)
                for c in p.content
                if not isinstance(c, TextPart) or c.text
            ]
        if p.is_error:
            block["is_error"] = True
        return block
    if p.redacted:
        return {"type": "redacted_thinking", "data": p.text}
    if p.signature:
        return {"type": "thinking", "thinking": p.text, "signature": p.signature}
    return None


# -- response ------------------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    parts: list[Part] = []
    for block in body.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(block.get("text", "")))
        elif kind == "tool_use":
            args = orjson.dumps(block.get("input") or {}).decode()
            parts.append(ToolCallPart(block["id"], block["name"], args))
        elif kind == "thinking":
            parts.append(ThinkingPart(block.get("thinking", ""), block.get("signature")))
        elif kind == "redacted_thinking":
            parts.append(ThinkingPart(block.get("data", ""), redacted=True))
    usage = body.get("usage")
    return ChatResponse(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        parts=parts,
        finish_reason=FINISH_FROM_ANTHROPIC.get(body.get("stop_reason") or "end_turn", "stop"),
        usage=usage_to_canonical(usage) if isinstance(usage, dict) else None,
        stop_sequence=body.get("stop_sequence"),
        created=now(),
    )


def response_from_canonical(resp: ChatResponse, client_model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for p in resp.parts:
        if isinstance(p, ThinkingPart):
            if p.redacted:
                content.append({"type": "redacted_thinking", "data": p.text})
            else:
                thinking = {"type": "thinking", "thinking": p.text, "signature": p.signature or ""}
                content.append(thinking)
        elif isinstance(p, TextPart):
            content.append({"type": "text", "text": p.text})
        elif isinstance(p, ToolCallPart):
            args = loose_arguments(p.arguments)
            content.append(
                {"type": "tool_use", "id": _safe_id(p.id), "name": p.name, "input": args}
            )
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": stop_reason(resp.finish_reason, resp.stop_sequence),
        "stop_sequence": resp.stop_sequence,
        "usage": usage_from_canonical(resp.usage or Usage()),
    }
