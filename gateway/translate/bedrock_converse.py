"""Amazon Bedrock Converse <-> canonical (streams are decoded in bedrock_converse_stream.py).

API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html

Choices made where the protocols differ:
- The model and streaming come from the URL (``/model/{modelId}/converse`` or
  ``/converse-stream``), not the body. Answers carry no id: one is made up. Bedrock is a
  provider protocol only: no client speaks it, so only its provider side is here (the
  tests read what it writes with a reader of their own: tests/translate/bedrock_reader.py).
- Content blocks are keyed by shape (``text``, ``image``, ``toolUse``, ``toolResult``,
  ``reasoningContent``); bytes (images, redacted reasoning) travel base64 in JSON. Images
  must be inline: Converse cannot fetch URLs. Tool ids are made to fit ``[a-zA-Z0-9_.:-]``.
- Bedrock refuses tool blocks in the history without ``toolConfig``, and its ``toolChoice``
  has no "none": ``tool_choice: none`` withholds the tools, and either with tool blocks in
  the history is refused.
- ``json_schema`` output uses ``outputConfig.textFormat`` (the models that support
  structured output); ``json_object`` asks for JSON in the system text, as for Anthropic.
- Thinking and ``top_k`` go in ``additionalModelRequestFields`` for Claude models only
  (named in the model id or inference profile), with Anthropic's budget rules; elsewhere
  they are dropped and reported, as are ``seed``, the penalties, ``user``, ``metadata``,
  ``parallel_tool_calls: false`` and server tools (``translate.policy``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gateway.translate import policy, server_tools
from gateway.translate.anthropic_messages import (
    DEFAULT_MAX_TOKENS,
    JSON_INSTRUCTION,
    MIN_THINKING_BUDGET,
)
from gateway.translate.bedrock_converse_stream import (
    StreamDecoder,
    error_event,
    finish_from_bedrock,
    usage_to_canonical,
)
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
)
from gateway.translate.wire import (
    dumps,
    new_id,
    now,
    parse_arguments,
    refuse_extra,
    thinking_budget,
    unsupported,
)

__all__ = [
    "StreamDecoder",
    "error_event",
    "request_from_canonical",
    "response_to_canonical",
    "usage_to_canonical",
]

NAME = "bedrock"
_KNOWN = frozenset(
    {
        "modelId", "messages", "system", "inferenceConfig", "toolConfig", "outputConfig",
        "additionalModelRequestFields",
    }
)  # fmt: skip
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_MEDIA_TYPES = {fmt: media for media, fmt in _FORMATS.items()}
_SAFE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.:-]")
_REASONING_SPELLING = {
    "openai": "reasoning_effort",
    "openai_responses": "reasoning.effort",
    "anthropic": "thinking",
    "gemini": "generationConfig.thinkingConfig",
}
"""How each client protocol spells a reasoning request, for reporting its drop."""


def is_claude(upstream_model: str) -> bool:
    """Model ids, cross-region profiles and ARNs of Claude all name ``anthropic.claude``."""
    return "anthropic.claude" in upstream_model


# -- request, written for Bedrock -----------------------------------------------------------


def request_from_canonical(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    refuse_extra(req, NAME)
    if req.n is not None and req.n > 1:
        raise unsupported("'n' > 1 (several choices)", NAME, "Send n = 1.")
    for name in ("seed", "presence_penalty", "frequency_penalty", "user", "metadata"):
        if getattr(req, name) is not None:
            policy.drop_field(req, name)
    if req.parallel_tool_calls is False:  # toolChoice has no switch for it
        policy.drop_field(req, "parallel_tool_calls")
    body: dict[str, Any] = {"messages": _write_messages(req.messages)}
    system = [s for s in req.system if s]
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        system.append(JSON_INSTRUCTION)
    elif rf is not None and rf.type == "json_schema":
        schema = {"schema": dumps(rf.schema or {}), "name": rf.name or "response"}
        body["outputConfig"] = {
            "textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}
        }
    if system:
        body["system"] = [{"text": s} for s in system]
    tool_config = _write_tool_config(req, body["messages"])
    if tool_config:
        body["toolConfig"] = tool_config
    server_tools.write(req, NAME)  # Converse runs no server tools: each is dropped
    config = _write_inference_config(req)
    fields = _write_model_fields(req, upstream_model, config)
    if config:
        body["inferenceConfig"] = config
    if req.source == NAME:
        extra = dict(req.extra)
        fields.update(extra.pop("additionalModelRequestFields", None) or {})
        body.update(extra)
    if fields:
        body["additionalModelRequestFields"] = fields
    return body


def _write_inference_config(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.stop:
        config["stopSequences"] = req.stop
    return config


def _write_model_fields(
    req: ChatRequest, upstream_model: str, config: dict[str, Any]
) -> dict[str, Any]:
    """Claude's own fields (its Messages API names); other models' hints are dropped."""
    claude = is_claude(upstream_model)
    fields: dict[str, Any] = {}
    if req.top_k is not None:
        if claude:
            fields["top_k"] = req.top_k
        else:
            policy.drop_field(req, "top_k")
    budget = thinking_budget(req)
    if not claude:
        if budget:
            policy.drop(req, _REASONING_SPELLING.get(req.source, "reasoning_effort"))
        if req.show_thinking is not None:
            policy.drop_field(req, "show_thinking")
        return fields
    if budget is None and req.show_thinking:
        budget = policy.EFFORT_BUDGETS["medium"]  # Claude shows thinking only when it is on
    if budget:
        max_tokens = config.setdefault("maxTokens", DEFAULT_MAX_TOKENS)
        budget = min(budget, max_tokens - 1)
        if budget >= MIN_THINKING_BUDGET:
            fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return fields


def _write_tool_config(req: ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
    tc = req.tool_choice
    offered = bool(req.tools) and (tc is None or tc.mode != "none")
    if not offered:
        if _has_tool_blocks(messages):
            raise unsupported(
                "A conversation with tool calls but no tools offered (or tool_choice 'none')",
                NAME,
                "Offer the tools the conversation used, with tool_choice 'auto'.",
            )
        return {}
    tools = []
    for t in req.tools:
        spec: dict[str, Any] = {"name": t.name, "inputSchema": {"json": t.parameters}}
        if t.description:
            spec["description"] = t.description
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if tc is not None and tc.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif tc is not None and tc.mode == "tool":
        config["toolChoice"] = {"tool": {"name": tc.name}}
    elif tc is not None:
        config["toolChoice"] = {"auto": {}}
    return config


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _safe_id(value: str) -> str:
    """A tool id Bedrock accepts, the same for a call and its result."""
    if _SAFE_ID.fullmatch(value):
        return value
    cleaned = _UNSAFE.sub("_", value)
    if 0 < len(cleaned) <= 64:
        return cleaned
    return "call_" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _write_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        blocks = [b for b in (_write_part(p) for p in m.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == m.role:  # Bedrock wants the roles to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    for msg in out:
        if msg["role"] == "user":
            # Claude wants a turn's tool results before anything else in it.
            msg["content"].sort(key=lambda b: "toolResult" not in b)
    return out


def _write_image(p: ImagePart) -> dict[str, Any]:
    if p.data is None:
        raise unsupported("Images given by URL", NAME, "Send them inline as base64 data: URLs.")
    media_type = p.media_type.lower() or "image/png"
    fmt = _FORMATS.get("image/jpeg" if media_type == "image/jpg" else media_type)
    if fmt is None:
        raise unsupported(f"Images of type {p.media_type!r}", NAME, "Send PNG, JPEG, GIF or WebP.")
    return {"image": {"format": fmt, "source": {"bytes": p.data}}}


def _write_part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"text": p.text} if p.text else None  # Bedrock refuses blank text blocks
    if isinstance(p, ImagePart):
        return _write_image(p)
    if isinstance(p, ToolCallPart):
        args = parse_arguments(p.arguments, p.id)
        return {"toolUse": {"toolUseId": _safe_id(p.id), "name": p.name, "input": args}}
    if isinstance(p, ToolResultPart):
        content = [
            {"text": c.text} if isinstance(c, TextPart) else _write_image(c)
            for c in p.content
            if not isinstance(c, TextPart) or c.text
        ]
        result: dict[str, Any] = {
            "toolUseId": _safe_id(p.call_id),
            "content": content or [{"text": ""}],
        }
        if p.is_error:
            result["status"] = "error"
        return {"toolResult": result}
    if p.redacted:
        return {"reasoningContent": {"redactedContent": p.text}}
    if p.signature:  # unsigned reasoning is refused by Claude: it stays behind
        return {"reasoningContent": {"reasoningText": {"text": p.text, "signature": p.signature}}}
    return None


# -- response ------------------------------------------------------------------------------


def _read_reasoning(block: dict[str, Any]) -> ThinkingPart:
    if "redactedContent" in block:
        return ThinkingPart(str(block["redactedContent"]), redacted=True)
    text = block.get("reasoningText") or {}
    return ThinkingPart(str(text.get("text", "")), text.get("signature"))


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    message = (body.get("output") or {}).get("message") or {}
    parts: list[Part] = []
    for block in message.get("content") or ():
        if "text" in block:
            parts.append(TextPart(str(block["text"])))
        elif "toolUse" in block:
            use = block["toolUse"]
            args = dumps(use.get("input") or {})
            parts.append(ToolCallPart(str(use["toolUseId"]), str(use["name"]), args))
        elif "reasoningContent" in block:
            parts.append(_read_reasoning(block["reasoningContent"]))
        elif "citationsContent" in block:  # text the model wrote, with its sources
            for item in block["citationsContent"].get("content") or ():
                if item.get("text"):
                    parts.append(TextPart(str(item["text"])))
    usage = body.get("usage")
    fields = body.get("additionalModelResponseFields")
    stop_sequence = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return ChatResponse(
        id=new_id("msg_"),
        model="",
        parts=parts,
        finish_reason=finish_from_bedrock(body.get("stopReason")),
        usage=usage_to_canonical(usage) if isinstance(usage, dict) else None,
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        created=now(),
    )
