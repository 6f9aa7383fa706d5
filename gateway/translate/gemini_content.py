"""Gemini generateContent <-> canonical.

Choices made where the protocols differ:
- The model and streaming come from the URL, not the body: callers set ``req.model`` and
  ``req.stream`` after ``request_to_canonical`` and pick ``:generateContent`` or
  ``:streamGenerateContent?alt=sse`` themselves.
- Function calls carry no ids on the Gemini API: ids are made up (``call_<turn>_<n>`` in
  requests, ``call_<responseId>_<n>`` in answers) and a ``functionResponse`` is matched to
  the earliest unanswered call of its name. Going to Gemini, a tool result gets its
  function's name from the call with the same id earlier in the history.
- A tool result's text goes in ``functionResponse.response`` as the JSON object it holds,
  else as ``{"result": text}`` (``{"error": text}`` when it is an error); coming back,
  ``{"result": str}`` and ``{"error": str}`` unwrap again.
- A function call without Gemini's thought signature (the history came from another
  provider) gets the documented ``skip_thought_signature_validator`` so Gemini 3 accepts it.
- Thinking parts are not sent to Gemini (it needs only the signatures); images must be
  inline (``data:`` URLs / base64) or ``gs://`` files: Gemini cannot fetch http URLs.
- ``user``, ``metadata`` and ``parallel_tool_calls: false`` have no Gemini form: dropped and
  reported (``translate.policy``), as are Gemini's own hints going elsewhere.
- ``includeThoughts`` is a display switch (``show_thinking``), not a budget; a budget (or an
  effort) becomes ``thinkingBudget`` by ``policy.EFFORT_BUDGETS``.
"""

from __future__ import annotations

from typing import Any

from gateway.translate import policy, server_tools
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from gateway.translate.gemini_content_stream import (
    FINISH_TO_GEMINI,
    StreamDecoder,
    StreamEncoder,
    call_id,
    error_event,
    finish_from_gemini,
    read_part,
    usage_from_canonical,
    usage_to_canonical,
)
from gateway.translate.gemini_request import read_generation_config, read_tools
from gateway.translate.gemini_schema import SchemaCleaner
from gateway.translate.wire import (
    as_dict,
    as_list,
    as_str,
    bad,
    dumps,
    is_base64,
    loose_arguments,
    new_id,
    not_translatable,
    now,
    opt_list,
    opt_str,
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

NAME = "gemini"
SKIP_SIGNATURE = "skip_thought_signature_validator"
_KNOWN = frozenset(
    {
        "contents", "systemInstruction", "system_instruction", "tools", "toolConfig",
        "tool_config", "generationConfig", "generation_config", "model",
    }
)  # fmt: skip


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def _get_dict(d: dict[str, Any], camel: str, snake: str, param: str) -> dict[str, Any] | None:
    value = _get(d, camel, snake)
    return None if value is None else as_dict(value, f"{param}.{camel}")


def _get_str(d: dict[str, Any], camel: str, snake: str, param: str) -> str | None:
    value = _get(d, camel, snake)
    return None if value is None else as_str(value, f"{param}.{camel}")


# -- request -------------------------------------------------------------------------------


def request_to_canonical(body: dict[str, Any]) -> ChatRequest:
    contents = as_list(body.get("contents"), "contents")
    req = ChatRequest(model=str(body.get("model", "")), messages=[], source=NAME)
    pending: list[tuple[str, str]] = []  # unanswered (name, id) calls, oldest first
    for i, raw in enumerate(contents):
        content = as_dict(raw, f"contents[{i}]")
        role = "assistant" if content.get("role") == "model" else "user"
        parts: list[Part] = []
        for j, part in enumerate(as_list(content.get("parts"), f"contents[{i}].parts")):
            read = _read_part(as_dict(part, f"contents[{i}].parts[{j}]"), f"contents[{i}]", j)
            if isinstance(read, ToolCallPart):
                if read.id == "":
                    read.id = f"call_{i}_{j}"
                pending.append((read.name, read.id))
            elif isinstance(read, ToolResultPart) and read.call_id.startswith("name:"):
                read.call_id = _answer(pending, read.call_id[5:], i, j)
            if read is not None:
                parts.append(read)
        if req.messages and req.messages[-1].role == role:
            req.messages[-1].parts.extend(parts)
        else:
            req.messages.append(Message(role, parts))  # type: ignore[arg-type]
    system = _get(body, "systemInstruction", "system_instruction")
    if isinstance(system, str):
        req.system = [system]
    elif isinstance(system, dict):
        system_parts = opt_list(system, "parts", "systemInstruction.parts")
        texts = [p.get("text") for p in system_parts if isinstance(p, dict)]
        req.system = [as_str(t, "systemInstruction.parts[].text") for t in texts if t]
    read_tools(body, req)
    read_generation_config(body, req)
    policy.read_top_level(body, NAME, _KNOWN, req)
    return req


def _answer(pending: list[tuple[str, str]], name: str, i: int, j: int) -> str:
    for k, (call_name, cid) in enumerate(pending):
        if call_name == name:
            del pending[k]
            return cid
    return f"call_{i}_{j}"


def _read_part(part: dict[str, Any], param: str, j: int) -> Part | None:
    param = f"{param}.parts[{j}]"
    signature = _get_str(part, "thoughtSignature", "thought_signature", param)
    if "text" in part:
        text = as_str(part["text"], param + ".text")
        return ThinkingPart(text, signature) if part.get("thought") else TextPart(text)
    inline = _get_dict(part, "inlineData", "inline_data", param)
    if inline is not None:
        mime = _get_str(inline, "mimeType", "mime_type", param + ".inlineData") or ""
        if not mime.startswith("image/"):
            raise not_translatable(f"Inline data of type {mime!r}", "Only images translate.")
        data = opt_str(inline, "data", param + ".inlineData.data") or ""
        return ImagePart(media_type=mime, data=data)
    file = _get_dict(part, "fileData", "file_data", param)
    if file is not None:
        mime = _get_str(file, "mimeType", "mime_type", param + ".fileData") or ""
        uri = _get_str(file, "fileUri", "file_uri", param + ".fileData") or ""
        if not mime.startswith("image/") or not uri.startswith(("http://", "https://")):
            raise not_translatable("Gemini file references", "Send images inline.")
        return ImagePart(media_type=mime, url=uri)
    call = _get_dict(part, "functionCall", "function_call", param)
    if call is not None:
        args = call.get("args") or {}
        call_id = opt_str(call, "id", param + ".functionCall.id") or ""
        name = opt_str(call, "name", param + ".functionCall.name") or ""
        return ToolCallPart(call_id, name, dumps(args), signature)
    response = _get_dict(part, "functionResponse", "function_response", param)
    if response is not None:
        value = response.get("response") or {}
        is_error = isinstance(value, dict) and set(value) == {"error"}
        if (
            isinstance(value, dict)
            and len(value) == 1
            and isinstance(next(iter(value.values())), str)
        ):
            text = next(iter(value.values())) if set(value) <= {"result", "error"} else dumps(value)
        else:
            text = dumps(value)
        cid = str(response.get("id") or "name:" + str(response.get("name", "")))
        return ToolResultPart(cid, [TextPart(text)], is_error)
    if "thoughtSignature" in part or "thought_signature" in part:
        return None
    raise not_translatable(f"Gemini part {sorted(part)!r} in {param}")


def request_from_canonical(req: ChatRequest, upstream_model: str) -> dict[str, Any]:
    refuse_extra(req, NAME)
    if req.n is not None and req.n > 1:
        raise unsupported("'n' > 1 (several candidates)", NAME, "Send n = 1.")
    for name in ("user", "metadata"):
        if getattr(req, name) is not None:
            policy.drop_field(req, name)
    if req.parallel_tool_calls is False:  # Gemini may always call several at once
        policy.drop_field(req, "parallel_tool_calls")
    body: dict[str, Any] = {"contents": _write_contents(req.messages)}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": s} for s in req.system]}
    schemas = SchemaCleaner()  # bounds the work and size of all this request's schemas
    if req.tools:
        decls = []
        for t in req.tools:
            decl: dict[str, Any] = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            params = schemas.to_gemini(
                t.parameters, f"The parameters of tool '{t.name[:64]}'", "tools"
            )
            if params.get("properties"):
                decl["parameters"] = params
            decls.append(decl)
        body["tools"] = [{"functionDeclarations": decls}]
        if req.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _write_tool_choice(req.tool_choice)}
    native = server_tools.write(req, NAME)
    if native:
        body["tools"] = [*body.get("tools", ()), *native]
    config = _write_generation_config(req, schemas)
    if config:
        body["generationConfig"] = config
    if req.source == NAME:
        body.update(req.extra)
    return body


def _write_tool_choice(tc: ToolChoice) -> dict[str, Any]:
    if tc.mode == "tool":
        return {"mode": "ANY", "allowedFunctionNames": [tc.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[tc.mode]}


def _write_generation_config(req: ChatRequest, schemas: SchemaCleaner) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, name in (
        ("max_tokens", "maxOutputTokens"),
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = getattr(req, key)
        if value is not None:
            config[name] = value
    if req.stop:
        config["stopSequences"] = req.stop
    rf = req.response_format
    if rf is not None and rf.type != "text":
        config["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema:
            config["responseSchema"] = schemas.to_gemini(rf.schema, "The response schema")
    budget = thinking_budget(req)
    show = req.show_thinking
    if budget is not None:
        show = budget > 0 if show is None else show and budget > 0
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": show}
    elif show is not None:
        config["thinkingConfig"] = {"includeThoughts": show}
    return config


def _write_contents(messages: list[Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        parts: list[dict[str, Any]] = []
        signed = False
        for p in m.parts:
            if isinstance(p, TextPart):
                if p.text:
                    parts.append({"text": p.text})
            elif isinstance(p, ImagePart):
                parts.append(_write_image(p))
            elif isinstance(p, ToolCallPart):
                names[p.id] = p.name
                part: dict[str, Any] = {
                    "functionCall": {"name": p.name, "args": parse_arguments(p.arguments, p.id)}
                }
                if p.signature or not signed:
                    part["thoughtSignature"] = p.signature or SKIP_SIGNATURE
                    signed = True
                parts.append(part)
            elif isinstance(p, ToolResultPart):
                parts.extend(_write_result(p, names))
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


def _write_image(p: ImagePart) -> dict[str, Any]:
    if p.data is not None:
        return {"inlineData": {"mimeType": p.media_type or "image/png", "data": p.data}}
    url = p.url or ""
    if url.startswith("gs://"):
        return {"fileData": {"mimeType": p.media_type or "image/jpeg", "fileUri": url}}
    raise unsupported("Images given by http(s) URL", NAME, "Send them inline as data: URLs.")


def _write_result(p: ToolResultPart, names: dict[str, str]) -> list[dict[str, Any]]:
    name = names.get(p.call_id)
    if name is None:
        message = f"the tool result for call '{p.call_id}' has no matching tool call before it"
        raise bad("messages", message)
    text = "".join(c.text for c in p.content if isinstance(c, TextPart))
    value = loose_arguments(text) if text.lstrip().startswith("{") else {}
    if not value or "_raw_arguments" in value:
        value = {"error" if p.is_error else "result": text}
    out: list[dict[str, Any]] = [{"functionResponse": {"name": name, "response": value}}]
    out.extend(_write_image(c) for c in p.content if isinstance(c, ImagePart))
    return out


# -- response ------------------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    response_id = str(body.get("responseId") or new_id(""))
    candidates = body.get("candidates") or ()
    parts: list[Part] = []
    calls = 0
    reason = "STOP"
    if candidates:
        candidate = candidates[0]
        reason = candidate.get("finishReason") or "STOP"
        for part in (candidate.get("content") or {}).get("parts") or ():
            kind, value = read_part(part)
            if kind == "text":
                parts.append(TextPart(value))
            elif kind == "thought":
                parts.append(ThinkingPart(value.get("text", ""), value.get("thoughtSignature")))
            elif kind == "call":
                cid = value.get("id") or call_id(response_id, calls)
                calls += 1
                args = dumps(value.get("args") or {})
                sig = part.get("thoughtSignature")
                parts.append(ToolCallPart(cid, value.get("name", ""), args, sig))
    elif (body.get("promptFeedback") or {}).get("blockReason"):
        reason = "SAFETY"
    has_calls = calls > 0
    usage = body.get("usageMetadata")
    return ChatResponse(
        id=response_id,
        model=str(body.get("modelVersion", "")),
        parts=parts,
        finish_reason=finish_from_gemini(reason, has_calls),
        usage=usage_to_canonical(usage) if isinstance(usage, dict) else None,
        created=now(),
    )


def response_from_canonical(resp: ChatResponse, client_model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for p in resp.parts:
        if isinstance(p, TextPart):
            parts.append({"text": p.text})
        elif isinstance(p, ThinkingPart) and not p.redacted:
            part: dict[str, Any] = {"text": p.text, "thought": True}
            if p.signature and is_base64(p.signature):
                part["thoughtSignature"] = p.signature
            parts.append(part)
        elif isinstance(p, ToolCallPart):
            call = {"id": p.id, "name": p.name, "args": loose_arguments(p.arguments)}
            part = {"functionCall": call}
            if p.signature and is_base64(p.signature):
                part["thoughtSignature"] = p.signature
            parts.append(part)
    candidate = {
        "content": {"role": "model", "parts": parts},
        "finishReason": FINISH_TO_GEMINI[resp.finish_reason],
        "index": 0,
    }
    body: dict[str, Any] = {"candidates": [candidate]}
    if resp.usage is not None:
        body["usageMetadata"] = usage_from_canonical(resp.usage)
    body["modelVersion"] = client_model
    body["responseId"] = resp.id
    return body
