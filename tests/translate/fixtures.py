"""Golden wire captures (tests/fixtures/<protocol>/) and stream helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.translate import CONVERTERS
from gateway.translate.canonical import StreamEvent
from gateway.translate.sse import SSEParser

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


def load_json(path: str) -> dict[str, Any]:
    value = json.loads((ROOT / path).read_text())
    assert isinstance(value, dict)
    return value


def load_bytes(path: str) -> bytes:
    return (ROOT / path).read_bytes()


def decode_stream(protocol: str, raw: bytes) -> list[StreamEvent]:
    parser = SSEParser()
    decoder = CONVERTERS[protocol].StreamDecoder()
    events: list[StreamEvent] = []
    for ev in parser.feed(raw) + parser.close():
        events.extend(decoder.feed(ev.event, ev.data))
    events.extend(decoder.close())
    return events


def encode_stream(protocol: str, events: list[StreamEvent], include_usage: bool = False) -> bytes:
    encoder = CONVERTERS[protocol].StreamEncoder("client-model", include_usage)
    return b"".join(encoder.feed(ev) for ev in events) + encoder.close()


REQUESTS = {
    "openai": "openai/chat_request_tools.json",
    "anthropic": "anthropic/request_tools.json",
    "gemini": "gemini/request_tools.json",
    "openai_responses": "openai/responses_request.json",
}
RESPONSES = {
    "openai": ["openai/chat_response_text.json", "openai/chat_response_tool_calls.json"],
    "anthropic": [
        "anthropic/response_text.json",
        "anthropic/response_tool_use.json",
        "anthropic/response_thinking.json",
    ],
    "gemini": ["gemini/response_text.json", "gemini/response_function_call.json"],
    "openai_responses": ["openai/responses_response.json"],
}
STREAMS = {
    "openai": ["openai/chat_stream_text.sse", "openai/chat_stream_tool_calls.sse"],
    "anthropic": [
        "anthropic/stream_text.sse",
        "anthropic/stream_tool_use.sse",
        "anthropic/stream_thinking.sse",
    ],
    "gemini": [
        "gemini/stream_text.sse",
        "gemini/stream_function_call.sse",
        "gemini/stream_thinking.sse",
    ],
    "openai_responses": [
        "openai/responses_stream_text.sse",
        "openai/responses_stream_tool_call.sse",
    ],
}
