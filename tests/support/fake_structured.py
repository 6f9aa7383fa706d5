"""Structured output in the fakes: a request that asks for JSON gets a JSON instance of its
schema as its text, as the real APIs answer it.

Where each protocol asks for it (official API references):
- OpenAI chat: `response_format` `{"type": "json_schema", "json_schema": {"schema": ...}}` or
  `{"type": "json_object"}`
  (https://platform.openai.com/docs/api-reference/chat/create#chat-create-response_format);
- OpenAI Responses: `text.format` `{"type": "json_schema", "schema": ...}` or
  `{"type": "json_object"}`
  (https://platform.openai.com/docs/api-reference/responses/create#responses-create-text);
- Anthropic: `output_format` (structured-outputs beta) or `output_config.format`,
  `{"type": "json_schema", "schema": ...}`
  (https://docs.claude.com/en/docs/build-with-claude/structured-outputs);
- Gemini: `generationConfig.responseMimeType` `application/json` with `responseSchema`
  (OpenAPI subset, upper-case types) or `responseJsonSchema` (JSON Schema)
  (https://ai.google.dev/api/generate-content#generationconfig).
"""

from __future__ import annotations

import json
from typing import Any

NO_SCHEMA: dict[str, Any] = {}
"""JSON was asked for without a schema: any object will do."""


def openai_chat_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return dict(spec.get("schema") or NO_SCHEMA)
    return NO_SCHEMA if fmt.get("type") == "json_object" else None


def responses_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = (body.get("text") or {}).get("format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        return dict(fmt.get("schema") or NO_SCHEMA)
    return NO_SCHEMA if fmt.get("type") == "json_object" else None


def anthropic_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return dict(fmt.get("schema") or NO_SCHEMA)
    return None


def gemini_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if isinstance(schema, dict):
        return schema
    return NO_SCHEMA if config.get("responseMimeType") == "application/json" else None


def instance_of(schema: dict[str, Any]) -> Any:
    """A small value that satisfies `schema` (JSON Schema or Gemini's OpenAPI subset)."""
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for combo in ("anyOf", "oneOf", "allOf"):
        if schema.get(combo):
            return instance_of(schema[combo][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower() if kind else "object"
    if kind == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        return {name: instance_of(sub) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items")
        count = int(schema.get("minItems") or 0)
        return [instance_of(items if isinstance(items, dict) else {}) for _ in range(count)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "ok"


def json_pieces(schema: dict[str, Any]) -> list[str]:
    """The instance's JSON text in two pieces, so a stream carries it in several deltas."""
    text = json.dumps(instance_of(schema))
    half = max(1, len(text) // 2)
    return [text[:half], text[half:]]
