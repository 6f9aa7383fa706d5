"""The fake upstream's Gemini answers (generateContent, streamGenerateContent); a request for
JSON output (responseMimeType with responseSchema or responseJsonSchema) gets an instance of
its schema as its text."""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_structured import gemini_schema, json_pieces
from tests.support.fake_wire import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    TOOL_ARGS,
    Reply,
    _sse,
    text_of,
)


def _gemini_wants_tool(body: dict[str, Any]) -> str | None:
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
    contents = body.get("contents") or []
    if not declarations:
        return None
    parts = contents[-1].get("parts", []) if contents else []
    if any("functionResponse" in p for p in parts):
        return None
    return str(declarations[0]["name"])


def gemini_reply(path: str, body: dict[str, Any], chunks: int) -> Reply:
    model = path.rsplit("/", 1)[-1].split(":", 1)[0]
    tool = _gemini_wants_tool(body)
    schema = gemini_schema(body)
    pieces = json_pieces(schema) if schema is not None else text_of(chunks)
    usage = {
        "promptTokenCount": PROMPT_TOKENS,
        "candidatesTokenCount": COMPLETION_TOKENS,
        "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS,
    }

    def candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            out["finishReason"] = finish
        return out

    if ":generateContent" in path:
        parts = (
            [{"functionCall": {"name": tool, "args": json.loads(TOOL_ARGS)}}]
            if tool
            else [{"text": "".join(pieces)}]
        )
        return Reply(
            {
                "candidates": [candidate(parts, "STOP")],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": "fake-response",
            }
        )
    if tool:
        return Reply(
            events=[
                _sse(
                    {
                        "candidates": [
                            candidate(
                                [{"functionCall": {"name": tool, "args": json.loads(TOOL_ARGS)}}],
                                "STOP",
                            )
                        ],
                        "usageMetadata": usage,
                        "modelVersion": model,
                    }
                )
            ]
        )
    events = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        events.append(
            _sse(
                {
                    "candidates": [candidate([{"text": piece}], "STOP" if last else None)],
                    "usageMetadata": usage
                    if last
                    else {"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS},
                    "modelVersion": model,
                }
            )
        )
    return Reply(events=events)
