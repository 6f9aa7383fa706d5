"""The client side of Bedrock Converse (a Converse request read, a Converse answer written),
which the gateway never needs (no client speaks Bedrock to it): the tests use it to read back
what gateway.translate.bedrock_converse writes, and to answer in Converse's shape."""

from __future__ import annotations

from typing import Any

from gateway.translate import policy
from gateway.translate.bedrock_converse import (
    _KNOWN,
    _MEDIA_TYPES,
    NAME,
    _read_reasoning,
    _safe_id,
)
from gateway.translate.bedrock_converse_stream import (
    FINISH_TO_BEDROCK,
    usage_from_canonical,
)
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
    opt_dict,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
    string_list,
)

# -- request, read from Bedrock -------------------------------------------------------------


def request_to_canonical(body: dict[str, Any]) -> ChatRequest:
    req = ChatRequest(model=str(body.get("modelId", "")), messages=[], source=NAME)
    for i, raw in enumerate(as_list(body.get("messages"), "messages")):
        m = as_dict(raw, f"messages[{i}]")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise bad(f"messages[{i}].role", "expected user or assistant")
        param = f"messages[{i}].content"
        parts = [
            _read_block(as_dict(b, f"{param}[{j}]"), f"{param}[{j}]", req)
            for j, b in enumerate(as_list(m.get("content"), param))
        ]
        _append(req.messages, role, [p for p in parts if p is not None])
    for i, raw in enumerate(opt_list(body, "system")):
        block = as_dict(raw, f"system[{i}]")
        if "text" in block:
            req.system.append(as_str(block["text"], f"system[{i}].text"))
        elif "cachePoint" in block:
            policy.drop(req, "cachePoint")
        else:
            raise not_translatable(f"System blocks {sorted(block)!r}", "Only text translates.")
    _read_inference_config(body, req)
    _read_tool_config(body, req)
    _read_output_config(body, req)
    _read_model_fields(body, req)
    policy.read_top_level(body, NAME, _KNOWN, req)
    return req


def _append(messages: list[Message], role: Role, parts: list[Part]) -> None:
    if messages and messages[-1].role == role:
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, parts))


def _read_image(block: dict[str, Any], param: str) -> ImagePart:
    fmt = as_str(block.get("format"), param + ".format")
    source = as_dict(block.get("source"), param + ".source")
    if "bytes" not in source or fmt not in _MEDIA_TYPES:
        raise not_translatable("Images in S3 or of other formats", "Send PNG, JPEG, GIF or WebP.")
    return ImagePart(media_type=_MEDIA_TYPES[fmt], data=as_str(source["bytes"], param + ".bytes"))


def _read_block(block: dict[str, Any], param: str, req: ChatRequest) -> Part | None:
    if "text" in block:
        return TextPart(as_str(block["text"], param + ".text"))
    if "image" in block:
        return _read_image(as_dict(block["image"], param + ".image"), param + ".image")
    if "toolUse" in block:
        use = as_dict(block["toolUse"], param + ".toolUse")
        return ToolCallPart(
            id=as_str(use.get("toolUseId"), param + ".toolUse.toolUseId"),
            name=as_str(use.get("name"), param + ".toolUse.name"),
            arguments=dumps(use.get("input") or {}),
        )
    if "toolResult" in block:
        return _read_tool_result(as_dict(block["toolResult"], param + ".toolResult"), param)
    if "reasoningContent" in block:
        return _read_reasoning(as_dict(block["reasoningContent"], param + ".reasoningContent"))
    if "cachePoint" in block:
        policy.drop(req, "cachePoint")
        return None
    raise not_translatable(
        f"Content blocks {sorted(block)!r}", "Only text, images and tools translate."
    )


def _read_tool_result(result: dict[str, Any], param: str) -> ToolResultPart:
    param += ".toolResult"
    items: list[TextPart | ImagePart] = []
    for k, raw in enumerate(as_list(result.get("content"), param + ".content")):
        item = as_dict(raw, f"{param}.content[{k}]")
        if "text" in item:
            items.append(TextPart(as_str(item["text"], f"{param}.content[{k}].text")))
        elif "json" in item:
            items.append(TextPart(dumps(item["json"])))
        elif "image" in item:
            image = as_dict(item["image"], f"{param}.content[{k}].image")
            items.append(_read_image(image, f"{param}.content[{k}].image"))
        else:
            raise not_translatable(f"Tool results holding {sorted(item)!r}")
    call_id = as_str(result.get("toolUseId"), param + ".toolUseId")
    return ToolResultPart(call_id, items, result.get("status") == "error")


def _read_inference_config(body: dict[str, Any], req: ChatRequest) -> None:
    config = opt_dict(body, "inferenceConfig") or {}
    p = "inferenceConfig."
    req.max_tokens = opt_int(config, "maxTokens", p + "maxTokens")
    req.temperature = opt_number(config, "temperature", p + "temperature")
    req.top_p = opt_number(config, "topP", p + "topP")
    req.stop = string_list(config.get("stopSequences"), p + "stopSequences")


def _read_tool_config(body: dict[str, Any], req: ChatRequest) -> None:
    config = opt_dict(body, "toolConfig")
    if config is None:
        return
    for i, raw in enumerate(opt_list(config, "tools", "toolConfig.tools")):
        param = f"toolConfig.tools[{i}]"
        tool = as_dict(raw, param)
        if "cachePoint" in tool:
            policy.drop(req, "cachePoint")
            continue
        spec = as_dict(tool.get("toolSpec"), param + ".toolSpec")
        schema = as_dict(spec.get("inputSchema"), param + ".toolSpec.inputSchema")
        params = as_dict(schema.get("json"), param + ".toolSpec.inputSchema.json")
        name = as_str(spec.get("name"), param + ".toolSpec.name")
        description = opt_str(spec, "description", param + ".toolSpec.description")
        req.tools.append(Tool(name, description, params))
    choice = opt_dict(config, "toolChoice", "toolConfig.toolChoice")
    if choice is None:
        return
    if "auto" in choice:
        req.tool_choice = ToolChoice("auto")
    elif "any" in choice:
        req.tool_choice = ToolChoice("required")
    elif "tool" in choice:
        named = as_dict(choice["tool"], "toolConfig.toolChoice.tool")
        req.tool_choice = ToolChoice("tool", as_str(named.get("name"), "toolConfig.toolChoice"))
    else:
        raise bad("toolConfig.toolChoice", "expected auto, any or tool")


def _read_output_config(body: dict[str, Any], req: ChatRequest) -> None:
    config = opt_dict(body, "outputConfig") or {}
    fmt = opt_dict(config, "textFormat", "outputConfig.textFormat")
    if fmt is None:
        return
    structure = as_dict(fmt.get("structure"), "outputConfig.textFormat.structure")
    schema = as_dict(structure.get("jsonSchema"), "outputConfig.textFormat.structure.jsonSchema")
    text = as_str(schema.get("schema"), "outputConfig.textFormat.structure.jsonSchema.schema")
    value = loose_arguments(text)
    if "_raw_arguments" in value:
        raise bad("outputConfig.textFormat.structure.jsonSchema.schema", "expected a JSON schema")
    req.response_format = ResponseFormat("json_schema", value, opt_str(schema, "name"))


def _read_model_fields(body: dict[str, Any], req: ChatRequest) -> None:
    """Claude's thinking and top_k become canonical; other model fields stay for Bedrock."""
    fields = dict(opt_dict(body, "additionalModelRequestFields") or {})
    top_k = fields.pop("top_k", None)
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        req.top_k = top_k
    elif top_k is not None:
        raise bad("additionalModelRequestFields.top_k", "expected an integer")
    thinking = fields.pop("thinking", None)
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        req.thinking_budget = opt_int(thinking, "budget_tokens", "thinking.budget_tokens")
    elif isinstance(thinking, dict) and thinking.get("type") == "disabled":
        req.thinking_budget = 0
    elif thinking is not None:
        fields["thinking"] = thinking
    if fields:
        req.extra["additionalModelRequestFields"] = fields


def response_from_canonical(resp: ChatResponse, client_model: str) -> dict[str, Any]:
    """A Converse answer; it names no model (``client_model`` is the URL's)."""
    content = [b for b in (_write_answer_part(p) for p in resp.parts) if b is not None]
    reason = FINISH_TO_BEDROCK[resp.finish_reason]
    if resp.finish_reason == "stop" and resp.stop_sequence:
        reason = "stop_sequence"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": reason,
        "usage": usage_from_canonical(resp.usage or Usage()),
        "metrics": {"latencyMs": 0},
    }


def _write_answer_part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, ThinkingPart):
        if p.redacted:
            return {"reasoningContent": {"redactedContent": p.text}}
        text: dict[str, Any] = {"text": p.text}
        if p.signature:
            text["signature"] = p.signature
        return {"reasoningContent": {"reasoningText": text}}
    if isinstance(p, TextPart):
        return {"text": p.text}
    if isinstance(p, ToolCallPart):
        args = loose_arguments(p.arguments)
        return {"toolUse": {"toolUseId": _safe_id(p.id), "name": p.name, "input": args}}
    return None
