"""OpenAI Responses API (``/v1/responses``) <-> canonical; a client-side protocol.

Choices made where the protocols differ:
- The gateway stores no responses: ``previous_response_id`` and ``conversation`` are
  refused with a 400 that says so (send the whole conversation as ``input``).
- ``instructions`` and system/developer input messages become system text, in order.
- Reasoning travels as ``reasoning`` items: the summary text is the thinking text and
  ``encrypted_content`` carries the opaque signature, so a client can hand it back.
- Tools follow ``translate.server_tools``: ``namespace`` tools and ``additional_tools``
  input items are flattened to functions under names from ``translate.tool_names``, and
  calls come back with their ``namespace``; web search maps to the target's own.
- ``reasoning.summary`` asks to see the reasoning (``show_thinking``); ``reasoning.effort``
  is mapped by ``policy.EFFORT_BUDGETS``.
- Hints (``store``, ``include``, ``client_metadata``, ``text.verbosity``...), semantics and
  unknown fields follow ``translate.policy``.
"""

from __future__ import annotations

from typing import Any

from gateway.translate import policy
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from gateway.translate.openai_responses_stream import (
    StreamDecoder,
    StreamEncoder,
    error_event,
    finish_of,
    response_body,
    status_of,
    usage_from_canonical,
    usage_to_canonical,
)
from gateway.translate.openai_responses_tools import read_tools, tool_names
from gateway.translate.tool_names import ToolNames
from gateway.translate.wire import (
    as_dict,
    as_list,
    as_str,
    bad,
    image_from_url,
    image_to_url,
    joined_text,
    new_id,
    not_translatable,
    now,
    opt_bool,
    opt_dict,
    opt_int,
    opt_list,
    opt_number,
    opt_str,
    refuse_extra,
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

NAME = "openai_responses"
_KNOWN = frozenset(
    {
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
        "tool_choice", "parallel_tool_calls", "text", "reasoning", "stream", "user", "metadata",
    }
)  # fmt: skip


# -- request -------------------------------------------------------------------------------


def request_to_canonical(body: dict[str, Any]) -> ChatRequest:
    req = ChatRequest(
        model=str(body.get("model", "")),
        messages=[],
        max_tokens=opt_int(body, "max_output_tokens"),
        temperature=opt_number(body, "temperature"),
        top_p=opt_number(body, "top_p"),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        stream=body.get("stream") is True,
        user=opt_str(body, "user"),
        metadata=opt_dict(body, "metadata"),
        source=NAME,
    )
    policy.read_top_level(body, NAME, _KNOWN, req)  # first: refusals say why before all else
    if body.get("instructions"):
        req.system.append(as_str(body["instructions"], "instructions"))
    names = tool_names(body)
    raw = body.get("input")
    if isinstance(raw, str):
        req.messages.append(Message("user", [TextPart(raw)]))
    else:
        for i, item in enumerate(as_list(raw, "input")):
            _read_item(as_dict(item, f"input[{i}]"), f"input[{i}]", req, names)
    read_tools(body, req, names)
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        fmt = text["format"]
        kind = fmt.get("type")
        if kind == "json_schema":
            schema = as_dict(fmt.get("schema"), "text.format.schema")
            name = opt_str(fmt, "name", "text.format.name")
            strict = opt_bool(fmt, "strict", "text.format.strict")
            req.response_format = ResponseFormat(kind, schema, name, strict)
        elif kind in ("text", "json_object"):
            req.response_format = ResponseFormat(kind)
        else:
            raise bad("text.format.type", "expected text, json_object or json_schema")
    if isinstance(text, dict) and text.get("verbosity") is not None:
        policy.drop(req, "text.verbosity")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        if reasoning.get("effort"):
            req.reasoning_effort = opt_str(reasoning, "effort", "reasoning.effort")
        summary = reasoning.get("summary") or reasoning.get("generate_summary")
        if summary is not None:
            req.show_thinking = summary != "none"
    return req


def _add(req: ChatRequest, role: str, part: Part) -> None:
    if req.messages and req.messages[-1].role == role:
        req.messages[-1].parts.append(part)
    else:
        req.messages.append(Message(role, [part]))  # type: ignore[arg-type]


def _read_item(item: dict[str, Any], param: str, req: ChatRequest, names: ToolNames) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        parts = _read_content(item.get("content"), param + ".content")
        if role in ("system", "developer"):
            req.system.append(joined_text(parts))
        elif role in ("user", "assistant"):
            for p in parts:
                _add(req, role, p)
        else:
            raise bad(param + ".role", "expected user, assistant, system or developer")
    elif kind == "function_call":
        name = as_str(item.get("name"), param + ".name")
        namespace = opt_str(item, "namespace", param + ".namespace")
        call = ToolCallPart(
            as_str(item.get("call_id"), param + ".call_id"),
            names.flat(name, namespace),
            opt_str(item, "arguments", param + ".arguments") or "",
        )
        _add(req, "assistant", call)
    elif kind == "function_call_output":
        output = item.get("output")
        content = _read_content(output, param + ".output")
        call_id = as_str(item.get("call_id"), param + ".call_id")
        _add(req, "user", ToolResultPart(call_id, content))  # type: ignore[arg-type]
    elif kind == "reasoning":
        summary = "".join(
            opt_str(as_dict(s, f"{param}.summary[{k}]"), "text", f"{param}.summary[{k}].text") or ""
            for k, s in enumerate(opt_list(item, "summary", param + ".summary"))
        )
        signature = opt_str(item, "encrypted_content", param + ".encrypted_content")
        _add(req, "assistant", ThinkingPart(summary, signature))
    elif kind == "additional_tools":
        pass  # read with the request's tools
    else:
        raise not_translatable(f"Input items of type {kind!r}")


def _read_content(content: Any, param: str) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)]
    parts: list[Part] = []
    for j, item in enumerate(as_list(content, param)):
        item = as_dict(item, f"{param}[{j}]")
        kind = item.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(as_str(item.get("text"), f"{param}[{j}].text")))
        elif kind == "refusal":
            parts.append(TextPart(as_str(item.get("refusal"), f"{param}[{j}].refusal")))
        elif kind == "input_image":
            if not item.get("image_url"):
                raise not_translatable("Images by file_id", "Send them as data: URLs.")
            url = as_str(item["image_url"], f"{param}[{j}].image_url")
            detail = opt_str(item, "detail", f"{param}[{j}].detail")
            parts.append(image_from_url(url, f"{param}[{j}].image_url", detail))
        else:
            raise not_translatable(f"'{kind}' content", "Only text and images translate.")
    return parts


def request_from_canonical(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    refuse_extra(req, NAME)
    if req.n is not None and req.n > 1:
        raise unsupported("'n' > 1 (several choices)", NAME, "Send n = 1.")
    if req.stop:
        raise unsupported("'stop'", NAME, "Remove it.")
    for name in ("top_k", "seed", "presence_penalty", "frequency_penalty"):
        if getattr(req, name) is not None:
            policy.drop_field(req, name)
    items: list[dict[str, Any]] = []
    for m in req.messages:
        items.extend(_write_items(m.role, m.parts))
    body: dict[str, Any] = {"model": upstream_model, "input": items}
    if req.system:
        body["instructions"] = "\n\n".join(req.system)
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    for key in ("temperature", "top_p", "parallel_tool_calls", "user", "metadata"):
        if getattr(req, key) is not None:
            body[key] = getattr(req, key)
    if req.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": False,
            }
            for t in req.tools
        ]
    if req.server_tools:
        tools = body.setdefault("tools", [])
        tools.extend({"type": t.kind, **t.options} for t in req.server_tools)
    tc = req.tool_choice
    if tc is not None:
        body["tool_choice"] = (
            {"type": "function", "name": tc.name} if tc.mode == "tool" else tc.mode
        )
    rf = req.response_format
    if rf is not None:
        fmt: dict[str, Any] = {"type": rf.type}
        if rf.type == "json_schema":
            fmt.update(name=rf.name or "response", schema=rf.schema or {}, strict=rf.strict)
        body["text"] = {"format": fmt}
    reasoning: dict[str, Any] = {}
    if req.reasoning_effort is not None:
        reasoning["effort"] = req.reasoning_effort
    if req.show_thinking:
        reasoning["summary"] = "auto"
    if reasoning:
        body["reasoning"] = reasoning
    if req.stream:
        body["stream"] = True
    return body


def _write_items(role: str, parts: list[Part]) -> list[dict[str, Any]]:
    """Input items of one turn: its text and images together in one message item."""
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    text_kind = "output_text" if role == "assistant" else "input_text"
    for p in parts:
        if isinstance(p, TextPart):
            content.append({"type": text_kind, "text": p.text})
            continue
        if isinstance(p, ImagePart):
            url = image_to_url(p)
            content.append({"type": "input_image", "image_url": url, "detail": p.detail or "auto"})
            continue
        if content:
            items.append({"type": "message", "role": role, "content": content})
            content = []
        if isinstance(p, ToolCallPart):
            items.append(
                {"type": "function_call", "call_id": p.id, "name": p.name, "arguments": p.arguments}
            )
        elif isinstance(p, ToolResultPart):
            output: str | list[dict[str, Any]] = joined_text(p.content)
            if any(isinstance(c, ImagePart) for c in p.content):
                output = [
                    {"type": "input_text", "text": c.text}
                    if isinstance(c, TextPart)
                    else {"type": "input_image", "image_url": image_to_url(c), "detail": "auto"}
                    for c in p.content
                ]
            items.append({"type": "function_call_output", "call_id": p.call_id, "output": output})
        elif not p.redacted and p.signature:
            summary = [{"type": "summary_text", "text": p.text}]
            items.append(
                {"type": "reasoning", "summary": summary, "encrypted_content": p.signature}
            )
    if content:
        items.append({"type": "message", "role": role, "content": content})
    return items


# -- response ------------------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    parts: list[Part] = []
    for item in body.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or ():
                text = c.get("text") if c.get("type") == "output_text" else c.get("refusal")
                parts.append(TextPart(str(text or "")))
        elif kind == "function_call":
            parts.append(ToolCallPart(item["call_id"], item["name"], item.get("arguments", "")))
        elif kind == "reasoning":
            summary = "".join(s.get("text", "") for s in item.get("summary") or ())
            parts.append(ThinkingPart(summary, item.get("encrypted_content")))
    usage = body.get("usage")
    return ChatResponse(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        parts=parts,
        finish_reason=finish_of(body),
        usage=usage_to_canonical(usage) if isinstance(usage, dict) else None,
        created=int(body.get("created_at") or now()),
    )


def response_from_canonical(resp: ChatResponse, client_model: str) -> dict[str, Any]:
    resp_id = resp.id if resp.id.startswith("resp_") else "resp_" + (resp.id or new_id(""))
    output: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for p in resp.parts:
        n = len(output)
        if isinstance(p, ThinkingPart) and not p.redacted:
            item: dict[str, Any] = {
                "id": f"rs_{resp_id[5:]}_{n}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": p.text}],
            }
            if p.signature:
                item["encrypted_content"] = p.signature
            output.append(item)
        elif isinstance(p, TextPart):
            if not texts:
                output.append(
                    {
                        "id": f"msg_{resp_id[5:]}_{n}",
                        "type": "message",
                        "status": "completed",
                        "role": "assistant",
                        "content": texts,
                    }
                )
            texts.append({"type": "output_text", "text": p.text, "annotations": []})
        elif isinstance(p, ToolCallPart):
            call = {
                "id": "fc_" + p.id.removeprefix("call_"),
                "type": "function_call",
                "status": "completed",
                "call_id": p.id,
                "name": p.name,
                "arguments": p.arguments,
            }
            if p.namespace is not None:
                call["namespace"] = p.namespace
            output.append(call)
    status, details = status_of(resp.finish_reason)
    body = response_body(resp_id, client_model, resp.created or now(), status, output)
    body["incomplete_details"] = details
    if resp.usage is not None:
        body["usage"] = usage_from_canonical(resp.usage)
    return body
