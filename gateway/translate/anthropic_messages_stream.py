"""Anthropic messages streams <-> canonical stream events.

The encoder writes the sequence the official SDK accumulates: ``message_start``, then per
block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``, ``thinking_delta``, ``signature_delta``) / ``content_block_stop``,
then ``message_delta`` with the stop reason and the usage, and ``message_stop``.
Input tokens are unknown when ``message_start`` goes out (OpenAI and Gemini report usage
at the end), so ``message_delta`` carries them; the SDK takes them from there.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.canonical import (
    Finish,
    FinishReason,
    Start,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    Usage,
    count,
)
from gateway.translate.wire import new_id

FINISH_FROM_ANTHROPIC: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}
INCOMPLETE = "The upstream stream ended before the answer was complete; retry the request."


def stop_reason(reason: FinishReason, stop_sequence: str | None) -> str:
    return "stop_sequence" if reason == "stop" and stop_sequence else FINISH_TO_ANTHROPIC[reason]


def usage_to_canonical(u: dict[str, Any]) -> Usage:
    return Usage.cache_apart(
        count(u.get("input_tokens")),
        count(u.get("cache_read_input_tokens")),
        count(u.get("cache_creation_input_tokens")),
        count(u.get("output_tokens")),
    )


def usage_from_canonical(u: Usage) -> dict[str, Any]:
    uncached = u.uncached_prompt_tokens
    return {
        "input_tokens": uncached,
        "output_tokens": u.completion_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_prompt_tokens,
    }


def _event(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def error_event(message: str) -> bytes:
    """What the Anthropic SDK raises as an ``APIStatusError`` mid-stream."""
    return _event("error", {"type": "error", "error": {"type": "api_error", "message": message}})


class StreamDecoder:
    """Upstream Anthropic events -> canonical events."""

    __slots__ = ("_blocks", "_finished", "_tools", "_usage")

    def __init__(self) -> None:
        self._blocks: dict[int, int] = {}
        """Content block index -> canonical tool-call index (tool_use blocks only)."""
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._finished = False

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        body = orjson.loads(data)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "content_block_delta":
            delta = body["delta"]
            dkind = delta.get("type")
            if dkind == "text_delta":
                return [TextDelta(delta["text"])]
            if dkind == "input_json_delta":
                index = self._blocks.get(body["index"])
                if index is None or not delta.get("partial_json"):
                    return []
                return [ToolCallArgsDelta(index, delta["partial_json"])]
            if dkind == "thinking_delta":
                return [ThinkingDelta(delta["thinking"])]
            if dkind == "signature_delta":
                return [ThinkingDelta("", signature=delta["signature"])]
            return []
        if kind == "content_block_start":
            return self._block_start(body["index"], body["content_block"])
        if kind == "message_start":
            message = body.get("message") or {}
            self._usage = dict(message.get("usage") or {})
            return [Start(str(message.get("id", "")), str(message.get("model", "")))]
        if kind == "message_delta":
            self._finished = True
            delta = body.get("delta") or {}
            usage = body.get("usage") or {}
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            reason = FINISH_FROM_ANTHROPIC.get(delta.get("stop_reason") or "end_turn", "stop")
            return [Finish(reason, delta.get("stop_sequence")), usage_to_canonical(self._usage)]
        if kind == "error":
            error = body.get("error") or {}
            return [StreamError(str(error.get("message") or "upstream error"))]
        return []  # ping, content_block_stop, message_stop, unknown future events

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "text":
            return [TextDelta(block["text"])] if block.get("text") else []
        if kind == "tool_use":
            self._blocks[index] = tool = self._tools
            self._tools += 1
            out: list[StreamEvent] = [ToolCallStart(tool, block["id"], block["name"])]
            if block.get("input"):
                out.append(ToolCallArgsDelta(tool, orjson.dumps(block["input"]).decode()))
            return out
        if kind == "thinking":
            return [ThinkingDelta(block["thinking"])] if block.get("thinking") else []
        if kind == "redacted_thinking":
            return [ThinkingDelta(block["data"], redacted=True)]
        return []

    def close(self) -> list[StreamEvent]:
        return [] if self._finished else [StreamError(INCOMPLETE)]


class StreamEncoder:
    """Canonical events -> Anthropic SSE bytes, one event at a time."""

    __slots__ = (
        "_failed", "_finish", "_index", "_model", "_open", "_signed", "_started", "_stopped",
        "_tools", "_usage",
    )  # fmt: skip

    def __init__(self, client_model: str, include_usage: bool = False) -> None:
        self._model = client_model
        self._started = False
        self._stopped = False
        self._failed = False
        self._index = -1
        """Index of the latest content block."""
        self._open: str | None = None
        """Kind of the open block: text, thinking or tool."""
        self._signed = False
        self._tools: dict[int, int] = {}
        """Canonical tool-call index -> content block index."""
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def _start(self, message_id: str) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id or new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._index += 1
        self._open = kind
        body = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + _event("content_block_start", body)

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        body = {"type": "content_block_delta", "index": index, "delta": delta}
        return _event("content_block_delta", body)

    def feed(self, ev: StreamEvent) -> bytes:
        if self._stopped or self._failed:
            return b""
        if isinstance(ev, StreamError):
            self._failed = True
            return error_event(ev.message)
        out = b""
        if not self._started:
            out = self._start(ev.id if isinstance(ev, Start) else "")
        if isinstance(ev, TextDelta):
            if self._open != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            return out + self._delta(self._index, {"type": "text_delta", "text": ev.text})
        if isinstance(ev, ToolCallArgsDelta):
            index = self._tools.get(ev.index)
            if index is None:
                return out
            delta = {"type": "input_json_delta", "partial_json": ev.partial_json}
            return out + self._delta(index, delta)
        if isinstance(ev, ToolCallStart):
            block = {"type": "tool_use", "id": ev.id, "name": ev.name, "input": {}}
            out += self._open_block("tool", block)
            self._tools[ev.index] = self._index
            return out
        if isinstance(ev, ThinkingDelta):
            return out + self._thinking(ev)
        if isinstance(ev, Finish):
            self._finish = ev
        elif isinstance(ev, Usage):  # the latest is final: close() sends it
            self._usage = ev
        return out

    def _thinking(self, ev: ThinkingDelta) -> bytes:
        if ev.redacted:
            block = {"type": "redacted_thinking", "data": ev.text}
            return self._open_block("redacted", block) + self._close_block()
        out = b""
        if self._open != "thinking" or (self._signed and ev.text):
            out = self._open_block(
                "thinking", {"type": "thinking", "thinking": "", "signature": ""}
            )
            self._signed = False
        if ev.text:
            out += self._delta(self._index, {"type": "thinking_delta", "thinking": ev.text})
        if ev.signature:
            self._signed = True
            delta = {"type": "signature_delta", "signature": ev.signature}
            out += self._delta(self._index, delta)
        return out

    def _stop(self) -> bytes:
        self._stopped = True
        finish = self._finish or Finish("stop")
        delta = {
            "stop_reason": stop_reason(finish.reason, finish.stop_sequence),
            "stop_sequence": finish.stop_sequence,
        }
        usage = usage_from_canonical(self._usage or Usage())
        body = {"type": "message_delta", "delta": delta, "usage": usage}
        return (
            self._close_block()
            + _event("message_delta", body)
            + _event("message_stop", {"type": "message_stop"})
        )

    def close(self) -> bytes:
        """The stream's tail: the stop events, or an error when it never finished.

        ``message_delta`` (usage) and ``message_stop`` wait for the upstream's end: a client
        leaves at ``message_stop``, and the gateway settles the final usage before it."""
        if self._stopped or self._failed:
            return b""
        if self._finish is None:
            self._failed = True
            return error_event(INCOMPLETE)
        out = b"" if self._started else self._start("")
        return out + self._stop()
