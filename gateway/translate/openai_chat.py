"""OpenAI chat completions <-> canonical (also Azure OpenAI and OpenAI-compatible servers).

Choices made where the protocols differ:
- ``system`` and ``developer`` messages all become system text, in order.
- Consecutive ``tool`` messages become one user turn of tool results.
- Assistant reasoning is read from ``reasoning_content`` / ``reasoning`` (DeepSeek, vLLM,
  OpenRouter) and written back as ``reasoning_content``; it is never sent upstream in history.
- ``max_tokens``: sent as ``max_completion_tokens`` to OpenAI reasoning models (o1, o3, o4,
  gpt-5...), which refuse ``max_tokens``; as ``max_tokens`` elsewhere (compatible servers).
- ``metadata`` and ``top_k`` reach only OpenAI-protocol upstreams (compatible servers know
  ``top_k``); from other clients they are dropped and reported, as is a request to show
  reasoning (chat completions has no switch for it).
- Hints, semantics and unknown fields follow ``translate.policy``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.translate import policy, server_tools
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    Role,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from gateway.translate.openai_chat_stream import (
    FINISH_FROM_OPENAI,
    StreamDecoder,
    StreamEncoder,
    error_event,
    usage_from_canonical,
    usage_to_canonical,
)
from gateway.translate.wire import (
    as_dict,
    as_list,
    as_str,
    bad,
    effort_from_budget,
    image_from_url,
    image_to_url,
    joined_text,
    not_translatable,
    now,
    opt_bool,
    opt_dict,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
    refuse_extra,
    string_list,
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

NAME = "openai"
_KNOWN = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "stop", "n", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
        "response_format", "user", "metadata", "seed", "presence_penalty", "frequency_penalty",
        "reasoning_effort", "top_k",
    }
)  # fmt: skip
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")


# -- request -------------------------------------------------------------------------------


def request_to_canonical(body: dict[str, Any]) -> ChatRequest:
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad("messages", "expected a non-empty array of messages")
    system: list[str] = []
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        _read_message(as_dict(raw, f"messages[{i}]"), f"messages[{i}]", system, messages)
    max_tokens = opt_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens")
    options = body.get("stream_options")
    req = ChatRequest(
        model=str(body.get("model", "")),
        messages=messages,
        system=system,
        tools=_read_tools(body.get("tools")),
        tool_choice=_read_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        max_tokens=max_tokens,
        temperature=opt_number(body, "temperature"),
        top_p=opt_number(body, "top_p"),
        top_k=opt_int(body, "top_k"),
        stop=string_list(body.get("stop"), "stop"),
        response_format=_read_response_format(body.get("response_format")),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        n=opt_int(body, "n"),
        seed=opt_int(body, "seed"),
        presence_penalty=opt_number(body, "presence_penalty"),
        frequency_penalty=opt_number(body, "frequency_penalty"),
        reasoning_effort=opt_str(body, "reasoning_effort"),
        user=opt_str(body, "user"),
        metadata=opt_dict(body, "metadata"),
        source=NAME,
    )
    policy.read_top_level(body, NAME, _KNOWN, req)
    return req


def _read_message(
    raw: dict[str, Any], param: str, system: list[str], messages: list[Message]
) -> None:
    role = raw.get("role")
    content = raw.get("content")
    if role in ("system", "developer"):
        text = content if isinstance(content, str) else joined_text(_read_parts(content, param))
        system.append(text)
        return
    if role == "user":
        _append(messages, "user", _read_parts(content, param + ".content"))
    elif role == "assistant":
        _append(messages, "assistant", _read_assistant(raw, param))
    elif role == "tool":
        call_id = as_str(raw.get("tool_call_id"), param + ".tool_call_id")
        result = ToolResultPart(call_id, _read_parts(content, param + ".content"))
        _append(messages, "user", [result])
    elif role == "function":
        raise not_translatable("Legacy 'function' role messages", "Use 'tool' messages.")
    else:
        raise bad(param + ".role", f"unknown role {role!r}")


def _append(messages: list[Message], role: Role, parts: Sequence[Part]) -> None:
    if messages and messages[-1].role == role:
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, list(parts)))


def _read_parts(content: Any, param: str) -> list[TextPart | ImagePart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[TextPart | ImagePart] = []
    for j, item in enumerate(as_list(content, param)):
        item = as_dict(item, f"{param}[{j}]")
        kind = item.get("type")
        if kind == "text" or kind == "refusal":
            parts.append(TextPart(as_str(item.get(kind), f"{param}[{j}].{kind}")))
        elif kind == "image_url":
            image = as_dict(item.get("image_url"), f"{param}[{j}].image_url")
            url = as_str(image.get("url"), f"{param}[{j}].image_url.url")
            detail = opt_str(image, "detail", f"{param}[{j}].image_url.detail")
            parts.append(image_from_url(url, f"{param}[{j}].image_url.url", detail))
        elif kind in ("input_audio", "file"):
            raise not_translatable(f"'{kind}' content", "Only text and images translate.")
        else:
            raise bad(f"{param}[{j}].type", f"unknown content part type {kind!r}")
    return parts


def _read_assistant(raw: dict[str, Any], param: str) -> list[Part]:
    parts: list[Part] = []
    reasoning = raw.get("reasoning_content") or raw.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(reasoning))
    parts.extend(_read_parts(raw.get("content"), param + ".content"))
    if isinstance(raw.get("refusal"), str) and raw["refusal"]:
        parts.append(TextPart(raw["refusal"]))
    for k, call in enumerate(opt_list(raw, "tool_calls", param + ".tool_calls")):
        cparam = f"{param}.tool_calls[{k}]"
        call = as_dict(call, cparam)
        fn = as_dict(call.get("function"), cparam + ".function")
        parts.append(
            ToolCallPart(
                id=as_str(call.get("id"), cparam + ".id"),
                name=as_str(fn.get("name"), cparam + ".function.name"),
                arguments=opt_str(fn, "arguments", cparam + ".function.arguments") or "",
            )
        )
    if raw.get("function_call") is not None:
        raise not_translatable("Legacy 'function_call'", "Use 'tool_calls'.")
    return parts


def _read_tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    tools = []
    for i, item in enumerate(as_list(raw, "tools")):
        item = as_dict(item, f"tools[{i}]")
        if item.get("type", "function") != "function":
            raise not_translatable(f"Tools of type {item.get('type')!r}")
        fn = as_dict(item.get("function"), f"tools[{i}].function")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(
            Tool(
                as_str(fn.get("name"), f"tools[{i}].function.name"),
                opt_str(fn, "description", f"tools[{i}].function.description"),
                as_dict(params, f"tools[{i}].function.parameters"),
            )
        )
    return tools


def _read_tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        fn = as_dict(raw.get("function"), "tool_choice.function")
        return ToolChoice("tool", as_str(fn.get("name"), "tool_choice.function.name"))
    raise bad("tool_choice", "expected auto, none, required or a named function")


def _read_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = as_dict(raw, "response_format").get("type")
    if kind == "json_schema":
        spec = as_dict(raw.get("json_schema"), "response_format.json_schema")
        schema = as_dict(spec.get("schema", {}), "response_format.json_schema.schema")
        name = opt_str(spec, "name", "response_format.json_schema.name")
        strict = opt_bool(spec, "strict", "response_format.json_schema.strict")
        return ResponseFormat("json_schema", schema, name, strict)
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    raise bad("response_format.type", "expected text, json_object or json_schema")


def request_from_canonical(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    refuse_extra(req, NAME)
    messages: list[dict[str, Any]] = [{"role": "system", "content": s} for s in req.system]
    for m in req.messages:
        if m.role == "assistant":
            messages.append(_write_assistant(m.parts))
        else:
            _write_user(m.parts, messages)
    body: dict[str, Any] = {"model": upstream_model, "messages": messages}
    if req.max_tokens is not None:
        key = "max_completion_tokens" if _REASONING_MODELS.match(upstream_model) else "max_tokens"
        body[key] = req.max_tokens
    for key in ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop"] = req.stop
    server_tools.write(req, NAME)  # chat completions has no server tools: all are dropped
    if req.tools:
        body["tools"] = [_write_tool(t) for t in req.tools]
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice is not None:
        tc = req.tool_choice
        if tc.mode == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": tc.name}}
        else:
            body["tool_choice"] = tc.mode
    if req.response_format is not None:
        body["response_format"] = _write_response_format(req.response_format)
    effort = _effort(req)
    if effort is not None:
        body["reasoning_effort"] = effort
    if req.user is not None:
        body["user"] = req.user
    if req.source == NAME:
        if req.top_k is not None:
            body["top_k"] = req.top_k
        if req.metadata is not None:
            body["metadata"] = req.metadata
        body.update(req.extra)
    else:
        for name in ("top_k", "metadata", "show_thinking"):
            if getattr(req, name) is not None:
                policy.drop_field(req, name)
    if req.stream:
        body["stream"] = True
        # Usage is what quotas count: always ask; the encoder hides it unless the client asked.
        body["stream_options"] = {"include_usage": True}
    return body


def _effort(req: ChatRequest) -> str | None:
    if req.reasoning_effort is not None:
        return req.reasoning_effort
    if req.thinking_budget:
        return effort_from_budget(req.thinking_budget)
    return None


def _write_content(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return joined_text(parts) if len(parts) != 1 else parts[0].text  # type: ignore[union-attr]
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        else:
            image: dict[str, Any] = {"url": image_to_url(p)}
            if p.detail:
                image["detail"] = p.detail
            out.append({"type": "image_url", "image_url": image})
    return out


def _write_user(parts: list[Part], messages: list[dict[str, Any]]) -> None:
    rest: list[TextPart | ImagePart] = []
    tool_images: list[TextPart | ImagePart] = []
    for p in parts:
        if isinstance(p, ToolResultPart):
            text = joined_text(p.content)
            messages.append({"role": "tool", "tool_call_id": p.call_id, "content": text})
            images = [c for c in p.content if isinstance(c, ImagePart)]
            if images:
                # Tool messages carry text only: the images follow in a user turn.
                tool_images.append(TextPart(f"[images returned by tool call {p.call_id}]"))
                tool_images.extend(images)
        elif isinstance(p, TextPart | ImagePart):
            rest.append(p)
    rest = tool_images + rest
    if rest:
        messages.append({"role": "user", "content": _write_content(rest)})


def _write_assistant(parts: list[Part]) -> dict[str, Any]:
    texts = [p.text for p in parts if isinstance(p, TextPart)]
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in parts
        if isinstance(p, ToolCallPart)
    ]
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _write_tool(t: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name, "parameters": t.parameters}
    if t.description:
        fn["description"] = t.description
    return {"type": "function", "function": fn}


def _write_response_format(rf: ResponseFormat) -> dict[str, Any]:
    if rf.type != "json_schema":
        return {"type": rf.type}
    spec: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
    if rf.strict is not None:
        spec["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": spec}


# -- response ------------------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    choices = body.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    parts = _read_assistant(message, "choices[0].message")
    usage = body.get("usage")
    return ChatResponse(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        parts=parts,
        finish_reason=FINISH_FROM_OPENAI.get(choice.get("finish_reason") or "stop", "stop"),
        usage=usage_to_canonical(usage) if isinstance(usage, dict) else None,
        created=int(body.get("created") or now()),
    )


def response_from_canonical(resp: ChatResponse, client_model: str) -> dict[str, Any]:
    texts = [p.text for p in resp.parts if isinstance(p, TextPart)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    thinking = [p.text for p in resp.parts if isinstance(p, ThinkingPart) and not p.redacted]
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in resp.parts
        if isinstance(p, ToolCallPart)
    ]
    if calls:
        message["tool_calls"] = calls
    finish = "stop" if resp.finish_reason == "error" else resp.finish_reason
    body: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created or now(),
        "model": client_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if resp.usage is not None:
        body["usage"] = usage_from_canonical(resp.usage)
    return body
