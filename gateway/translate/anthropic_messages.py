"""Anthropic messages <-> canonical.

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
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from gateway.translate.wire import (
    as_dict,
    as_list,
    as_str,
    bad,
    dumps,
    loose_arguments,
    not_translatable,
    now,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
    parse_arguments,
    refuse_extra,
    string_list,
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

NAME = "anthropic"
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_KNOWN = frozenset(
    {
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
        "stop_sequences", "stream", "tools", "tool_choice", "metadata", "thinking",
        "output_config",
    }
)  # fmt: skip
_SAFE_ID = re.compile(r"[a-zA-Z0-9_-]+")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


# -- request -------------------------------------------------------------------------------


def request_to_canonical(body: dict[str, Any]) -> ChatRequest:
    raw_messages = as_list(body.get("messages"), "messages")
    system_list = _read_system(body.get("system"), "system")
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        m = as_dict(raw, f"messages[{i}]")
        if m.get("role") == "system":
            system_list.extend(_read_system(m.get("content"), f"messages[{i}].content"))
        else:
            messages.append(_read_message(m, i))
    if body.get("max_tokens") is None:
        raise bad("max_tokens", "this field is required")
    req = ChatRequest(
        model=str(body.get("model", "")),
        messages=messages,
        system=system_list,
        max_tokens=opt_int(body, "max_tokens"),
        temperature=opt_number(body, "temperature"),
        top_p=opt_number(body, "top_p"),
        top_k=opt_int(body, "top_k"),
        stop=string_list(body.get("stop_sequences"), "stop_sequences"),
        stream=body.get("stream") is True,
        source=NAME,
    )
    _read_tools(body, req)
    _read_thinking(body, req)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id"):
        req.user = str(metadata["user_id"])
    if _has_cache_marker(body):
        policy.drop(req, policy.CACHE_MARKER)
    policy.read_top_level(body, NAME, _KNOWN, req)
    return req


def _read_system(system: Any, param: str) -> list[str]:
    """A system prompt: a string or text blocks (a system message's content alike)."""
    if isinstance(system, list):
        return [as_str(as_dict(b, param).get("text"), param + "[].text") for b in system]
    return [as_str(system, param)] if system else []


def _blocks(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _has_cache_marker(body: dict[str, Any]) -> bool:
    """A cache_control on any system, message, tool-result or tool block."""
    marker = policy.CACHE_MARKER
    for block in (*_blocks(body.get("system")), *_blocks(body.get("tools"))):
        if isinstance(block, dict) and marker in block:
            return True
    for message in _blocks(body.get("messages")):
        content = message.get("content") if isinstance(message, dict) else None
        for block in _blocks(content):
            if isinstance(block, dict) and (
                marker in block
                or any(isinstance(b, dict) and marker in b for b in _blocks(block.get("content")))
            ):
                return True
    return False


def _read_message(raw: dict[str, Any], i: int) -> Message:
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise bad(f"messages[{i}].role", "expected user or assistant")
    content = raw.get("content")
    if isinstance(content, str):
        return Message(role, [TextPart(content)])
    param = f"messages[{i}].content"
    parts: list[Part] = []
    for j, block in enumerate(as_list(content, param)):
        parts.append(_read_block(as_dict(block, f"{param}[{j}]"), f"{param}[{j}]"))
    return Message(role, parts)


def _read_block(block: dict[str, Any], param: str) -> Part:
    kind = block.get("type")
    if kind == "text":
        return TextPart(as_str(block.get("text"), param + ".text"))
    if kind == "image":
        return _read_image(as_dict(block.get("source"), param + ".source"), param + ".source")
    if kind == "tool_use":
        return ToolCallPart(
            id=as_str(block.get("id"), param + ".id"),
            name=as_str(block.get("name"), param + ".name"),
            arguments=dumps(block.get("input") or {}),
        )
    if kind == "tool_result":
        content = block.get("content")
        items: list[TextPart | ImagePart] = []
        if isinstance(content, str):
            items.append(TextPart(content))
        elif content is not None:
            for k, sub in enumerate(as_list(content, param + ".content")):
                part = _read_block(as_dict(sub, f"{param}.content[{k}]"), f"{param}.content[{k}]")
                if not isinstance(part, TextPart | ImagePart):
                    raise bad(f"{param}.content[{k}]", "expected text or image blocks")
                items.append(part)
        call_id = as_str(block.get("tool_use_id"), param + ".tool_use_id")
        return ToolResultPart(call_id, items, bool(block.get("is_error")))
    if kind == "thinking":
        text = opt_str(block, "thinking", param + ".thinking") or ""
        return ThinkingPart(text, opt_str(block, "signature", param + ".signature"))
    if kind == "redacted_thinking":
        return ThinkingPart(as_str(block.get("data"), param + ".data"), redacted=True)
    raise not_translatable(f"'{kind}' content blocks", "Only text, images and tools translate.")


def _read_image(source: dict[str, Any], param: str) -> ImagePart:
    kind = source.get("type")
    if kind == "base64":
        return ImagePart(
            media_type=as_str(source.get("media_type"), param + ".media_type"),
            data=as_str(source.get("data"), param + ".data"),
        )
    if kind == "url":
        return ImagePart(url=as_str(source.get("url"), param + ".url"))
    raise not_translatable(f"Image sources of type {kind!r}", "Send base64 or a URL.")


def _read_tools(body: dict[str, Any], req: ChatRequest) -> None:
    for i, tool in enumerate(opt_list(body, "tools")):
        tool = as_dict(tool, f"tools[{i}]")
        if tool.get("type", "custom") != "custom":
            raise not_translatable(f"Anthropic server tool {tool.get('type')!r}")
        schema = as_dict(tool.get("input_schema"), f"tools[{i}].input_schema")
        name = as_str(tool.get("name"), f"tools[{i}].name")
        description = opt_str(tool, "description", f"tools[{i}].description")
        req.tools.append(Tool(name, description, schema))
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = as_dict(choice, "tool_choice").get("type")
    if kind == "auto":
        req.tool_choice = ToolChoice("auto")
    elif kind == "any":
        req.tool_choice = ToolChoice("required")
    elif kind == "none":
        req.tool_choice = ToolChoice("none")
    elif kind == "tool":
        req.tool_choice = ToolChoice("tool", as_str(choice.get("name"), "tool_choice.name"))
    else:
        raise bad("tool_choice.type", "expected auto, any, tool or none")
    if choice.get("disable_parallel_tool_use"):
        req.parallel_tool_calls = False


def _read_thinking(body: dict[str, Any], req: ChatRequest) -> None:
    config = body.get("output_config")
    if isinstance(config, dict):
        fmt = config.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = as_dict(fmt.get("schema"), "output_config.format.schema")
            req.response_format = ResponseFormat("json_schema", schema, "response")
        effort = opt_str(config, "effort", "output_config.effort")
        if effort:
            req.reasoning_effort = "high" if effort in ("xhigh", "max") else effort
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return
    display = opt_str(thinking, "display", "thinking.display")
    if display is not None:
        req.show_thinking = display != "omitted"
    kind = thinking.get("type")
    if kind == "enabled":
        req.thinking_budget = opt_int(thinking, "budget_tokens", "thinking.budget_tokens")
    elif kind == "disabled":
        req.thinking_budget = 0
    elif kind == "adaptive" and req.reasoning_effort is None:
        req.reasoning_effort = "medium"


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
