"""Reading an Anthropic Messages request into the canonical request.

The choices it makes are anthropic_messages.py's (its docstring lists them); this module is
the reading half, that one writes requests and translates responses.
"""

from __future__ import annotations

from typing import Any

from gateway.translate import policy
from gateway.translate.canonical import (
    ChatRequest,
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
)
from gateway.translate.wire import (
    as_dict,
    as_list,
    as_str,
    bad,
    dumps,
    not_translatable,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
    string_list,
)

__all__ = ["NAME", "request_to_canonical"]

NAME = "anthropic"
_KNOWN = frozenset(
    {
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
        "stop_sequences", "stream", "tools", "tool_choice", "metadata", "thinking",
        "output_config",
    }
)  # fmt: skip


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
