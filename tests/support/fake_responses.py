"""The fake upstream's OpenAI Responses API answers (POST /v1/responses), whole and streamed.

Shapes follow the official reference: the Response object
(https://platform.openai.com/docs/api-reference/responses/object) and its streaming events
(https://platform.openai.com/docs/api-reference/responses-streaming): `response.created`,
`response.in_progress`; per output item `response.output_item.added`, for a message
`response.content_part.added`, `response.output_text.delta`..., `response.output_text.done`,
`response.content_part.done`, for a function call `response.function_call_arguments.delta`...,
`response.function_call_arguments.done`; `response.output_item.done`; and last
`response.completed` with the usage. Every event has a growing `sequence_number`; no
`[DONE]` follows.

When the request offers function tools and its input does not end in a tool's output, the
answer calls the first tool with {"city": "Paris"}; a request for JSON output gets an
instance of its schema.
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_structured import json_pieces, responses_schema
from tests.support.fake_wire import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    TOOL_ARGS,
    Reply,
    _sse,
    text_of,
)

RESPONSE_ID = "resp_fake"
CALL_ID = "call_fake1"


def _wants_tool(body: dict[str, Any]) -> str | None:
    functions = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    items = body.get("input")
    last = items[-1] if isinstance(items, list) and items else {}
    if not functions or (isinstance(last, dict) and last.get("type") == "function_call_output"):
        return None
    return str(functions[0]["name"])


def _usage() -> dict[str, Any]:
    return {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def _response(body: dict[str, Any], status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "model": body.get("model", "fake"),
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": body.get("tools") or [],
        "top_p": None,
        "usage": _usage() if done else None,
    }


def _message(text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {
        "type": "message",
        "id": "msg_fake",
        "role": "assistant",
        "status": status,
        "content": [part] if status == "completed" else [],
    }


def _call(name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_fake1",
        "call_id": CALL_ID,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def responses_reply(body: dict[str, Any], chunks: int) -> Reply:
    tool = _wants_tool(body)
    schema = responses_schema(body)
    pieces = json_pieces(schema) if schema is not None else text_of(chunks)
    item = _call(tool, TOOL_ARGS) if tool else _message("".join(pieces))
    if not body.get("stream"):
        return Reply(_response(body, "completed", [item]))
    events = _Events()
    events.add("response.created", response=_response(body, "in_progress", []))
    events.add("response.in_progress", response=_response(body, "in_progress", []))
    at = {"item_id": item["id"], "output_index": 0}
    if tool:
        events.add(
            "response.output_item.added", output_index=0, item=_call(tool, "", "in_progress")
        )
        for piece in (TOOL_ARGS[:9], TOOL_ARGS[9:]):
            events.add("response.function_call_arguments.delta", **at, delta=piece)
        events.add("response.function_call_arguments.done", **at, name=tool, arguments=TOOL_ARGS)
    else:
        text = "".join(pieces)
        part = item["content"][0]
        empty = {**part, "text": ""}
        events.add("response.output_item.added", output_index=0, item=_message("", "in_progress"))
        events.add("response.content_part.added", **at, content_index=0, part=empty)
        for piece in pieces:
            events.add(
                "response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[]
            )
        events.add("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
        events.add("response.content_part.done", **at, content_index=0, part=part)
    events.add("response.output_item.done", output_index=0, item=item)
    events.add("response.completed", response=_response(body, "completed", [item]))
    return Reply(events=events.sent)


class _Events:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def add(self, kind: str, **data: Any) -> None:
        payload = {"type": kind, "sequence_number": len(self.sent), **data}
        self.sent.append(_sse(payload, kind))
