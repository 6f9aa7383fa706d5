"""Reading a Gemini request's tools and generationConfig into the canonical request.

The REST API takes camelCase and snake_case field names alike; both are read here.
"""

from __future__ import annotations

from typing import Any

from gateway.translate import policy
from gateway.translate.canonical import ChatRequest, ResponseFormat, Tool, ToolChoice
from gateway.translate.gemini_schema import from_gemini
from gateway.translate.wire import as_dict, as_list, bad, not_translatable, opt_int, opt_number

_THINKING_LEVELS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}

_ALIASES = {
    "max_output_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "stop_sequences": "stopSequences",
    "candidate_count": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "response_mime_type": "responseMimeType",
    "response_schema": "responseSchema",
    "response_json_schema": "responseJsonSchema",
    "thinking_config": "thinkingConfig",
    "response_modalities": "responseModalities",
    "media_resolution": "mediaResolution",
    "response_logprobs": "responseLogprobs",
    "enable_enhanced_civic_answers": "enableEnhancedCivicAnswers",
    "thinking_budget": "thinkingBudget",
    "thinking_level": "thinkingLevel",
    "include_thoughts": "includeThoughts",
    "function_declarations": "functionDeclarations",
    "function_calling_config": "functionCallingConfig",
    "allowed_function_names": "allowedFunctionNames",
    "parameters_json_schema": "parametersJsonSchema",
}


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    return {_ALIASES.get(k, k): v for k, v in d.items()}


def read_tools(body: dict[str, Any], req: ChatRequest) -> None:
    for i, entry in enumerate(as_list(body.get("tools") or [], "tools")):
        entry = _camel(as_dict(entry, f"tools[{i}]"))
        others = set(entry) - {"functionDeclarations"}
        if others:
            raise not_translatable(f"Gemini built-in tools ({', '.join(sorted(others))})")
        for j, decl in enumerate(as_list(entry.get("functionDeclarations"), f"tools[{i}]")):
            decl = _camel(as_dict(decl, f"tools[{i}].functionDeclarations[{j}]"))
            if "parametersJsonSchema" in decl:
                params = as_dict(decl["parametersJsonSchema"], "parametersJsonSchema")
            elif decl.get("parameters"):
                params = from_gemini(as_dict(decl["parameters"], "parameters"), "parameters")
            else:
                params = {"type": "object", "properties": {}}
            req.tools.append(Tool(str(decl.get("name", "")), decl.get("description"), params))
    config = body.get("toolConfig") or body.get("tool_config")
    if not isinstance(config, dict):
        return
    calling = _camel(config).get("functionCallingConfig")
    if not isinstance(calling, dict):
        return
    calling = _camel(calling)
    mode = str(calling.get("mode", "AUTO")).upper()
    names = calling.get("allowedFunctionNames") or []
    if mode == "ANY" and len(names) == 1:
        req.tool_choice = ToolChoice("tool", names[0])
        return
    if names:
        # Only these may be called: offering only them says the same to any provider.
        req.tools = [t for t in req.tools if t.name in names]
    if mode == "NONE":
        req.tool_choice = ToolChoice("none")
    elif mode == "ANY":
        req.tool_choice = ToolChoice("required")
    elif mode in ("AUTO", "VALIDATED", "MODE_UNSPECIFIED"):
        req.tool_choice = ToolChoice("auto")
    else:
        raise bad("toolConfig.functionCallingConfig.mode", "expected AUTO, ANY or NONE")


def read_generation_config(body: dict[str, Any], req: ChatRequest) -> None:
    raw = body.get("generationConfig") or body.get("generation_config")
    if raw is None:
        return
    config = _camel(as_dict(raw, "generationConfig"))
    p = "generationConfig."
    req.max_tokens = opt_int(config, "maxOutputTokens", p + "maxOutputTokens")
    req.temperature = opt_number(config, "temperature", p + "temperature")
    req.top_p = opt_number(config, "topP", p + "topP")
    req.top_k = opt_int(config, "topK", p + "topK")
    req.n = opt_int(config, "candidateCount", p + "candidateCount")
    req.seed = opt_int(config, "seed", p + "seed")
    req.presence_penalty = opt_number(config, "presencePenalty", p + "presencePenalty")
    req.frequency_penalty = opt_number(config, "frequencyPenalty", p + "frequencyPenalty")
    stop = config.get("stopSequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise bad(p + "stopSequences", "expected an array of strings")
        req.stop = stop
    _read_output(config, req)
    _read_thinking(config, req)
    modalities = config.get("responseModalities")
    if modalities and any(str(m).upper() != "TEXT" for m in modalities):
        raise not_translatable("Non-text response modalities", "Ask for TEXT only.")
    known = {
        "maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "seed",
        "presencePenalty", "frequencyPenalty", "stopSequences", "responseMimeType",
        "responseSchema", "responseJsonSchema", "thinkingConfig", "responseModalities",
    }  # fmt: skip
    for key in config.keys() - known:
        if key in policy.GEMINI_CONFIG_HINTS:
            policy.drop(req, p + key)
        else:
            req.extra[p + key] = config[key]


def _read_output(config: dict[str, Any], req: ChatRequest) -> None:
    mime = config.get("responseMimeType")
    if mime in (None, "text/plain"):
        return
    if mime != "application/json":
        raise not_translatable(f"responseMimeType {mime!r}", "Use application/json.")
    if config.get("responseJsonSchema") is not None:
        schema = as_dict(config["responseJsonSchema"], "generationConfig.responseJsonSchema")
        req.response_format = ResponseFormat("json_schema", schema, "response")
    elif config.get("responseSchema") is not None:
        param = "generationConfig.responseSchema"
        schema = from_gemini(as_dict(config["responseSchema"], param), param)
        req.response_format = ResponseFormat("json_schema", schema, "response")
    else:
        req.response_format = ResponseFormat("json_object")


def _read_thinking(config: dict[str, Any], req: ChatRequest) -> None:
    thinking = config.get("thinkingConfig")
    if not isinstance(thinking, dict):
        return
    thinking = _camel(thinking)
    show = thinking.get("includeThoughts")
    if isinstance(show, bool):
        req.show_thinking = show
    budget = thinking.get("thinkingBudget")
    level = thinking.get("thinkingLevel")
    if isinstance(budget, int) and budget >= 0:
        req.thinking_budget = budget
    elif isinstance(level, str):
        req.reasoning_effort = _THINKING_LEVELS.get(level.lower(), "medium")
    elif budget == -1:
        req.reasoning_effort = "medium"  # dynamic thinking
