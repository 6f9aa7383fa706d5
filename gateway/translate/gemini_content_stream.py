"""Gemini ``streamGenerateContent?alt=sse`` chunks <-> canonical stream events.

Each Gemini chunk is a whole ``GenerateContentResponse``. Function calls arrive whole (no
ids on the Gemini API: stable ids ``call_<responseId>_<n>`` are made up), so the encoder
holds a tool call until its arguments are complete, then sends it in one part. The finish
reason and usage go out together in the last chunk, as Gemini itself does.
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
from gateway.translate.wire import is_base64, loose_arguments, new_id

_FILTERED = (
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
)  # fmt: skip
FINISH_FROM_GEMINI: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED, "content_filter"),
}
"""Anything else (MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE, ...) is ``error``."""
FINISH_TO_GEMINI = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
INCOMPLETE = "The upstream stream ended before the answer was complete; retry the request."


def finish_from_gemini(reason: str, has_calls: bool) -> FinishReason:
    if reason == "STOP" and has_calls:
        return "tool_calls"  # Gemini says STOP after function calls
    return FINISH_FROM_GEMINI.get(reason, "error")


def usage_to_canonical(u: dict[str, Any]) -> Usage:
    # Tool-use prompt tokens (what the model read from its own tools' results) are
    # prompt tokens the upstream bills: they count for the client and for quotas alike.
    prompt = count(u.get("promptTokenCount")) + count(u.get("toolUsePromptTokenCount"))
    thoughts = count(u.get("thoughtsTokenCount"))
    completion = count(u.get("candidatesTokenCount")) + thoughts
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=count(u.get("totalTokenCount")) or prompt + completion,
        cached_prompt_tokens=count(u.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_from_canonical(u: Usage) -> dict[str, Any]:
    out = {
        "promptTokenCount": u.prompt_tokens,
        "candidatesTokenCount": max(u.completion_tokens - u.reasoning_tokens, 0),
        "totalTokenCount": u.total_tokens,
    }
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cached_prompt_tokens:
        out["cachedContentTokenCount"] = u.cached_prompt_tokens
    return out


def call_id(response_id: str, index: int) -> str:
    return f"call_{response_id}_{index}" if response_id else new_id("call_")


def read_part(part: dict[str, Any]) -> tuple[str, Any]:
    """(kind, value) of a response part: text, thought, call or skip."""
    if "text" in part:
        if part.get("thought"):
            return "thought", part
        return "text", part["text"]
    call = part.get("functionCall") or part.get("function_call")
    if call is not None:
        return "call", call
    return "skip", None


def error_event(message: str) -> bytes:
    """The google-genai SDK raises ``APIError`` on a chunk that is an error object."""
    body = {"error": {"code": 500, "message": message, "status": "INTERNAL"}}
    return b"data: " + orjson.dumps(body) + b"\r\n\r\n"


class StreamDecoder:
    """Upstream Gemini chunks -> canonical events."""

    __slots__ = ("_finished", "_id", "_tools", "_usage")

    def __init__(self) -> None:
        self._id: str | None = None
        self._tools = 0
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        chunk = orjson.loads(data)
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            return [StreamError(str(error.get("message") or "upstream error"))]
        out: list[StreamEvent] = []
        if self._id is None:
            self._id = str(chunk.get("responseId") or new_id(""))
            out.append(Start(self._id, str(chunk.get("modelVersion") or "")))
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            self._usage = usage_to_canonical(usage)
        candidates = chunk.get("candidates") or ()
        if not candidates:
            feedback = chunk.get("promptFeedback") or {}
            if feedback.get("blockReason"):
                self._finished = True
                out.append(Finish("content_filter"))
                out.append(self._usage or Usage())
            return out
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            self._part(part, out)
        reason = candidate.get("finishReason")
        if reason:
            self._finished = True
            out.append(Finish(finish_from_gemini(reason, self._tools > 0)))
            out.append(self._usage or Usage())
        return out

    def _part(self, part: dict[str, Any], out: list[StreamEvent]) -> None:
        kind, value = read_part(part)
        if kind == "text":
            if value:
                out.append(TextDelta(value))
        elif kind == "thought":
            out.append(ThinkingDelta(value.get("text", ""), value.get("thoughtSignature")))
        elif kind == "call":
            index = self._tools
            self._tools += 1
            cid = value.get("id") or call_id(self._id or "", index)
            sig = part.get("thoughtSignature")
            out.append(ToolCallStart(index, cid, value.get("name", ""), sig))
            out.append(ToolCallArgsDelta(index, orjson.dumps(value.get("args") or {}).decode()))

    def close(self) -> list[StreamEvent]:
        return [] if self._finished else [StreamError(INCOMPLETE)]


class StreamEncoder:
    """Canonical events -> Gemini SSE chunks, one per event (tool calls once complete)."""

    __slots__ = ("_calls", "_failed", "_finish", "_id", "_model", "_stopped", "_usage")

    def __init__(self, client_model: str, include_usage: bool = False) -> None:
        self._model = client_model
        self._id = ""
        self._calls: dict[int, list[Any]] = {}
        """Open tool calls: index -> [id, name, argument fragments, signature]."""
        self._finish: Finish | None = None
        self._usage: Usage | None = None
        self._stopped = False
        self._failed = False

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate]}
        if finish is not None:
            body["usageMetadata"] = usage_from_canonical(self._usage or Usage())
        body["modelVersion"] = self._model
        body["responseId"] = self._id
        return b"data: " + orjson.dumps(body) + b"\r\n\r\n"

    def _call_parts(self) -> list[dict[str, Any]]:
        parts = []
        for cid, name, fragments, signature in self._calls.values():
            call = {"id": cid, "name": name, "args": loose_arguments("".join(fragments))}
            part: dict[str, Any] = {"functionCall": call}
            if signature and is_base64(signature):
                part["thoughtSignature"] = signature
            parts.append(part)
        self._calls.clear()
        return parts

    def feed(self, ev: StreamEvent) -> bytes:
        if self._stopped or self._failed:
            return b""
        if isinstance(ev, ToolCallArgsDelta):
            call = self._calls.get(ev.index)
            if call is not None:
                call[2].append(ev.partial_json)
            return b""
        if isinstance(ev, StreamError):
            self._failed = True
            return error_event(ev.message)
        if isinstance(ev, Start):
            self._id = ev.id or new_id("")
            return b""
        if not self._id:
            self._id = new_id("")
        out = b""
        if self._calls and not isinstance(ev, Finish | Usage):
            out = self._chunk(self._call_parts())
        if isinstance(ev, TextDelta):
            return out + self._chunk([{"text": ev.text}])
        if isinstance(ev, ThinkingDelta):
            if ev.redacted:
                return out
            part: dict[str, Any] = {"text": ev.text, "thought": True}
            if ev.signature and is_base64(ev.signature):
                part["thoughtSignature"] = ev.signature
            return out + self._chunk([part])
        if isinstance(ev, ToolCallStart):
            self._calls[ev.index] = [ev.id, ev.name, [], ev.signature]
            return out
        if isinstance(ev, Finish):
            self._finish = ev
        elif isinstance(ev, Usage):  # the latest is final: close() sends it
            self._usage = ev
        return out

    def _stop(self) -> bytes:
        self._stopped = True
        parts = self._call_parts() or [{"text": ""}]
        finish = self._finish.reason if self._finish else "stop"
        return self._chunk(parts, FINISH_TO_GEMINI[finish])

    def close(self) -> bytes:
        """The stream's tail: the last chunk, or an error when it never finished.

        The chunk with ``finishReason`` and usage waits for the upstream's end: a client
        leaves at it, and the gateway settles the final usage before it."""
        if self._stopped or self._failed:
            return b""
        if self._finish is None:
            self._failed = True
            return error_event(INCOMPLETE)
        if not self._id:
            self._id = new_id("")
        return self._stop()
