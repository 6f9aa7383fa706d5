"""What the fake upstream answers, per protocol: bodies and SSE event sequences.

Fixed usage (11 prompt + 7 completion tokens) lets tests check that the gateway counts
exactly what the upstream reported. When the request offers tools and is not already
answering a tool call, the reply is a call of the first tool with {"city": "Paris"}.
An Anthropic request with thinking enabled gets a signed thinking block first. A request for
JSON output gets an instance of its schema (fake_structured). Anthropic `system` messages
inside `messages` are taken as the real API takes them: they are not a conversation turn.
Responses API answers are in fake_responses, Gemini's in fake_gemini. Claude on Vertex AI
(`:rawPredict`, `:streamRawPredict`, `count-tokens:rawPredict`) answers as Anthropic does, and
refuses (`request_problem`, a 400) a body without its `anthropic_version` or, but to count
tokens, with a `model`.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from tests.support.fake_gemini import gemini_reply
from tests.support.fake_responses import responses_reply
from tests.support.fake_structured import anthropic_schema, json_pieces, openai_chat_schema
from tests.support.fake_wire import (
    COMPLETION_TOKENS,
    EMBEDDING,
    PROMPT_TOKENS,
    TEXT_PIECES,
    THINKING_PIECES,
    THINKING_SIGNATURE,
    TOOL_ARGS,
    Reply,
    _sse,
    text_of,
)

__all__ = [
    "COMPLETION_TOKENS",
    "EMBEDDING",
    "PROMPT_TOKENS",
    "TEXT_PIECES",
    "THINKING_PIECES",
    "THINKING_SIGNATURE",
    "TOOL_ARGS",
    "Reply",
    "reply_for",
    "request_problem",
    "text_of",
]


def reply_for(path: str, body: dict[str, Any], chunks: int) -> Reply:
    if path.endswith("/chat/completions"):
        return _openai_chat(body, chunks)
    if path.endswith("/responses"):
        return responses_reply(body, chunks)
    if path.endswith("/completions"):
        return _openai_completions(body, chunks)
    if path.endswith("/embeddings"):
        return _openai_embeddings(body)
    if path.endswith("/messages/count_tokens"):
        return Reply({"input_tokens": PROMPT_TOKENS})
    if path.endswith("/messages"):
        return _anthropic(body, chunks)
    if path.endswith(VERTEX_COUNT):
        return Reply({"input_tokens": PROMPT_TOKENS})
    if path.endswith((":rawPredict", ":streamRawPredict")):
        return _anthropic({**body, "model": _vertex_model(path)}, chunks)
    if path.endswith(":countTokens"):
        return Reply({"totalTokens": PROMPT_TOKENS})
    if path.endswith(":batchEmbedContents"):
        count = len(body.get("requests", []))
        return Reply({"embeddings": [{"values": EMBEDDING} for _ in range(count)]})
    if path.endswith(":embedContent"):
        return Reply({"embedding": {"values": EMBEDDING}})
    if ":streamGenerateContent" in path or ":generateContent" in path:
        return gemini_reply(path, body, chunks)
    return Reply({"error": {"message": f"fake upstream has no {path}"}})


def request_problem(path: str, body: dict[str, Any]) -> str | None:
    """Why the real API would refuse this request (a 400), for the checks the fake makes."""
    if path.endswith((":rawPredict", ":streamRawPredict")):
        return _vertex_anthropic_problem(path, body)
    return None


# Claude on Vertex AI -----------------------------------------------------------------------
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
VERTEX_COUNT = "/models/count-tokens:rawPredict"
"""Vertex AI's one count-tokens URL for every Claude model (the body names the model)."""


def _vertex_model(path: str) -> str:
    """`claude-x@date` of `.../publishers/anthropic/models/claude-x@date:rawPredict`."""
    return path.rsplit("/models/", 1)[-1].rsplit(":", 1)[0]


def _vertex_anthropic_problem(path: str, body: dict[str, Any]) -> str | None:
    """Claude on Vertex AI takes the version in the body and, except to count tokens, the
    model in the URL only; `stream` must agree with the method (Anthropic's Vertex SDK)."""
    if body.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
        return f"anthropic_version: Input should be '{VERTEX_ANTHROPIC_VERSION}'"
    if path.endswith(VERTEX_COUNT):
        return None if isinstance(body.get("model"), str) else "model: Field required"
    if "model" in body:
        return "model: Extra inputs are not permitted"
    if bool(body.get("stream")) != path.endswith(":streamRawPredict"):
        return "stream: must be true with :streamRawPredict and absent or false with :rawPredict"
    return None


# OpenAI ------------------------------------------------------------------------------------
def _openai_wants_tool(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    if not tools or (messages and messages[-1].get("role") == "tool"):
        return None
    return str(tools[0]["function"]["name"])


def _openai_usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def _openai_chat(body: dict[str, Any], chunks: int) -> Reply:
    model = body.get("model", "fake")
    tool = _openai_wants_tool(body)
    schema = openai_chat_schema(body)
    pieces = json_pieces(schema) if schema is not None else text_of(chunks)
    base = {"id": "chatcmpl-fake", "created": 1700000000, "model": model}
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
        finish = "stop"
        if tool:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_fake1",
                        "type": "function",
                        "function": {"name": tool, "arguments": TOOL_ARGS},
                    }
                ],
            }
            finish = "tool_calls"
        return Reply(
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": _openai_usage(),
            }
        )
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if with_usage:
            data["usage"] = None
        return _sse(data)

    events = [chunk({"role": "assistant", "content": ""})]
    if tool:
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_fake1",
                            "type": "function",
                            "function": {"name": tool, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in (TOOL_ARGS[:9], TOOL_ARGS[9:]):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        events.append(chunk({}, "tool_calls"))
    else:
        events.extend(chunk({"content": piece}) for piece in pieces)
        events.append(chunk({}, "stop"))
    if with_usage:
        events.append(
            _sse(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": _openai_usage()}
            )
        )
    events.append(_sse("[DONE]"))
    return Reply(events=events)


def _openai_completions(body: dict[str, Any], chunks: int) -> Reply:
    base = {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": 1700000000,
        "model": body.get("model", "fake"),
    }
    if not body.get("stream"):
        return Reply(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "text": "".join(text_of(chunks)),
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _openai_usage(),
            }
        )
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = [
        _sse(
            {
                **base,
                "choices": [{"index": 0, "text": piece, "finish_reason": None, "logprobs": None}],
            }
        )
        for piece in text_of(chunks)
    ]
    events.append(
        _sse(
            {
                **base,
                "choices": [{"index": 0, "text": "", "finish_reason": "stop", "logprobs": None}],
            }
        )
    )
    if with_usage:
        events.append(_sse({**base, "choices": [], "usage": _openai_usage()}))
    events.append(_sse("[DONE]"))
    return Reply(events=events)


def _openai_embeddings(body: dict[str, Any]) -> Reply:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and not isinstance(inputs[0], int) else 1
    if body.get("encoding_format") == "base64":
        packed = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        vector: Any = packed
    else:
        vector = EMBEDDING
    return Reply(
        {
            "object": "list",
            "model": body.get("model", "fake"),
            "data": [
                {"object": "embedding", "index": i, "embedding": vector} for i in range(count)
            ],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS},
        }
    )


# Anthropic ---------------------------------------------------------------------------------
def _anthropic_wants_tool(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    turns = [m for m in body.get("messages") or [] if m.get("role") != "system"]
    if not tools:
        return None
    last = turns[-1] if turns else {}
    content = last.get("content")
    if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
        return None
    return str(tools[0]["name"])


def _anthropic_thinks(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


def _anthropic_thinking_events() -> list[bytes]:
    """A signed thinking block at index 0, streamed."""
    start = {"type": "thinking", "thinking": "", "signature": ""}
    events = [
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": start},
            "content_block_start",
        )
    ]
    for piece in THINKING_PIECES:
        delta = {"type": "thinking_delta", "thinking": piece}
        events.append(
            _sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")
        )
    signature = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
    events.append(
        _sse({"type": "content_block_delta", "index": 0, "delta": signature}, "content_block_delta")
    )
    events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    return events


def _anthropic(body: dict[str, Any], chunks: int) -> Reply:
    model = body.get("model", "fake")
    tool = _anthropic_wants_tool(body)
    schema = anthropic_schema(body)
    pieces = json_pieces(schema) if schema is not None else text_of(chunks)
    if not body.get("stream"):
        content: list[dict[str, Any]] = [{"type": "text", "text": "".join(pieces)}]
        stop = "end_turn"
        if tool:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_fake1",
                    "name": tool,
                    "input": json.loads(TOOL_ARGS),
                }
            ]
            stop = "tool_use"
        if _anthropic_thinks(body):
            thinking = {
                "type": "thinking",
                "thinking": "".join(THINKING_PIECES),
                "signature": THINKING_SIGNATURE,
            }
            content.insert(0, thinking)
        return Reply(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
            }
        )
    events = [
        _sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1},
                },
            },
            "message_start",
        )
    ]
    block = 0
    if _anthropic_thinks(body):
        events.extend(_anthropic_thinking_events())
        block = 1
    if tool:
        events.append(
            _sse(
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_fake1",
                        "name": tool,
                        "input": {},
                    },
                },
                "content_block_start",
            )
        )
        for piece in (TOOL_ARGS[:9], TOOL_ARGS[9:]):
            events.append(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": block,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                    "content_block_delta",
                )
            )
        stop = "tool_use"
    else:
        events.append(
            _sse(
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
        )
        events.append(_sse({"type": "ping"}, "ping"))
        for piece in pieces:
            events.append(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": block,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                    "content_block_delta",
                )
            )
        stop = "end_turn"
    events.append(_sse({"type": "content_block_stop", "index": block}, "content_block_stop"))
    events.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": COMPLETION_TOKENS},
            },
            "message_delta",
        )
    )
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return Reply(events=events)
