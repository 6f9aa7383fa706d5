"""OpenAI ``chat.completion.chunk`` streams <-> canonical stream events.

The encoder writes what the official SDK accumulates: the role in the first delta, tool
calls as ``index``/``id``/``function.name`` then argument fragments, a chunk with the
finish reason, the usage chunk (``choices: []``) only when the client asked for it with
``stream_options.include_usage``, then ``data: [DONE]``.
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
    counts,
)
from gateway.translate.wire import new_id, now

FINISH_FROM_OPENAI: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
DONE = b"data: [DONE]\n\n"
INCOMPLETE = "The upstream stream ended before the answer was complete; retry the request."


def usage_to_canonical(u: dict[str, Any]) -> Usage:
    prompt = count(u.get("prompt_tokens"))
    completion = count(u.get("completion_tokens"))
    details = counts(u, "prompt_tokens_details")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=count(u.get("total_tokens")) or prompt + completion,
        cached_prompt_tokens=count(details.get("cached_tokens")),
        cache_write_tokens=count(details.get("cache_write_tokens")),
        reasoning_tokens=count(counts(u, "completion_tokens_details").get("reasoning_tokens")),
    )


def usage_from_canonical(u: Usage) -> dict[str, Any]:
    details: dict[str, int] = {"cached_tokens": u.cached_prompt_tokens}
    if u.cache_write_tokens:
        details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def error_event(message: str) -> bytes:
    """What the OpenAI SDK raises as an ``APIError`` mid-stream."""
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


class StreamDecoder:
    """Upstream chunks -> canonical events (choice 0 only; ``n`` > 1 never crosses)."""

    __slots__ = ("_finished", "_ids", "_index", "_started")

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._ids: dict[int, tuple[int, str]] = {}
        """Upstream tool-call index -> (canonical index, call id)."""
        self._index = 0

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        if data.startswith("[DONE]"):
            return [] if self._finished else [Finish("stop")]
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            return []
        out: list[StreamEvent] = []
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            return [StreamError(str(message or "upstream error"))]
        if not self._started:
            self._started = True
            out.append(Start(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._choice(choice, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(usage_to_canonical(usage))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ThinkingDelta(reasoning))
        content = delta.get("content")
        if content:
            out.append(TextDelta(content))
        if delta.get("refusal"):
            out.append(TextDelta(delta["refusal"]))
        for call in delta.get("tool_calls") or ():
            upstream_index = call.get("index", 0)
            fn = call.get("function") or {}
            call_id = call.get("id")
            known = self._ids.get(upstream_index)
            # A new call: an unseen index, or a new id at a reused index. Some servers
            # repeat the same id in every fragment; that is still the same call.
            if known is None or (call_id and call_id != known[1]):
                index = self._index
                self._index += 1
                call_id = call_id or new_id("call_")
                self._ids[upstream_index] = (index, call_id)
                out.append(ToolCallStart(index, call_id, fn.get("name", "")))
            else:
                index = known[0]
            if fn.get("arguments"):
                out.append(ToolCallArgsDelta(index, fn["arguments"]))
        reason = choice.get("finish_reason")
        if reason:
            self._finished = True
            out.append(Finish(FINISH_FROM_OPENAI.get(reason, "stop")))

    def close(self) -> list[StreamEvent]:
        return [] if self._finished else [StreamError(INCOMPLETE)]


class StreamEncoder:
    """Canonical events -> ``chat.completion.chunk`` SSE bytes, one event at a time."""

    __slots__ = (
        "_failed", "_finished", "_head", "_include_usage", "_model", "_pending_usage", "_started"
    )  # fmt: skip

    def __init__(self, client_model: str, include_usage: bool = False) -> None:
        self._model = client_model
        self._include_usage = include_usage
        self._head = b""
        self._started = False
        self._finished = False
        self._failed = False
        self._pending_usage: Usage | None = None

    def _start(self, chunk_id: str) -> bytes:
        self._started = True
        head = {
            "id": chunk_id or new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": now(),
            "model": self._model,
        }
        # Every chunk repeats this head; render it once.
        self._head = b"data: " + orjson.dumps(head)[:-1] + b',"choices":'
        return self._chunk({"role": "assistant", "content": ""})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + orjson.dumps([choice]) + b"}\n\n"

    def _usage(self, usage: Usage) -> bytes:
        if not self._include_usage:
            return b""
        return self._head + b'[],"usage":' + orjson.dumps(usage_from_canonical(usage)) + b"}\n\n"

    def feed(self, ev: StreamEvent) -> bytes:
        if self._failed:
            return b""
        if isinstance(ev, StreamError):
            self._failed = True
            return error_event(ev.message)
        out = b""
        if not self._started:
            out = self._start(ev.id if isinstance(ev, Start) else "")
        if isinstance(ev, TextDelta):
            return out + self._chunk({"content": ev.text})
        if isinstance(ev, ToolCallArgsDelta):
            call = {"index": ev.index, "function": {"arguments": ev.partial_json}}
            return out + self._chunk({"tool_calls": [call]})
        if isinstance(ev, ToolCallStart):
            fn = {"name": ev.name, "arguments": ""}
            call = {"index": ev.index, "id": ev.id, "type": "function", "function": fn}
            return out + self._chunk({"tool_calls": [call]})
        if isinstance(ev, ThinkingDelta):
            if ev.text and not ev.redacted:
                return out + self._chunk({"reasoning_content": ev.text})
            return out
        if isinstance(ev, Finish):
            self._finished = True
            reason = "stop" if ev.reason == "error" else ev.reason
            return out + self._chunk({}, reason)
        if isinstance(ev, Usage):  # the latest is final: close() sends it
            self._pending_usage = ev
        return out

    def close(self) -> bytes:
        """The stream's tail: the usage chunk and ``[DONE]``, or an error event when it never
        finished. Both wait for the upstream's end: a client leaves at ``[DONE]``, and the
        gateway settles the final usage before it."""
        if self._failed:
            return b""
        if not self._finished:
            self._failed = True
            return error_event(INCOMPLETE)
        out = b""
        if self._pending_usage is not None:
            out = self._usage(self._pending_usage)
            self._pending_usage = None
        return out + DONE
