"""Amazon Bedrock ConverseStream events -> canonical stream events.

The upstream stream is AWS event-stream framing, not SSE: the caller unframes each message
(botocore's ``EventStreamBuffer``) and feeds its ``:event-type`` (or ``:exception-type``)
header and its JSON payload. The order is ``messageStart``, per content block
``contentBlockStart`` (tool calls only) / ``contentBlockDelta`` / ``contentBlockStop``, then
``messageStop`` with the stop reason and ``metadata`` with the usage
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html).

The stop reason is held until the usage arrives, so the two leave together, usage first:
whatever an encoder does on ``Finish``, it already knows the final count. Bedrock is never a
client protocol, so there is no encoder here.
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

FINISH_FROM_BEDROCK: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
"""https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax;
a reason added later reads as ``stop``."""
FINISH_TO_BEDROCK = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
    "error": "malformed_model_output",
}
EXCEPTIONS = frozenset(
    {
        "internalServerException", "modelStreamErrorException", "validationException",
        "throttlingException", "serviceUnavailableException",
    }
)  # fmt: skip
"""The ConverseStream exception events; their payload is ``{"message": ...}``."""
INCOMPLETE = "The upstream stream ended before the answer was complete; retry the request."


def finish_from_bedrock(stop_reason: object) -> FinishReason:
    return FINISH_FROM_BEDROCK.get(stop_reason if isinstance(stop_reason, str) else "", "stop")


def usage_to_canonical(u: dict[str, Any]) -> Usage:
    """Bedrock's ``TokenUsage``: ``inputTokens`` leaves out the cache reads and writes (as
    Anthropic's ``input_tokens`` does), canonical ``prompt_tokens`` counts them."""
    return Usage.cache_apart(
        count(u.get("inputTokens")),
        count(u.get("cacheReadInputTokens")),
        count(u.get("cacheWriteInputTokens")),
        count(u.get("outputTokens")),
    )


def usage_from_canonical(u: Usage) -> dict[str, Any]:
    uncached = u.uncached_prompt_tokens
    out = {
        "inputTokens": uncached,
        "outputTokens": u.completion_tokens,
        "totalTokens": u.total_tokens,
    }
    if u.cached_prompt_tokens:
        out["cacheReadInputTokens"] = u.cached_prompt_tokens
    if u.cache_write_tokens:
        out["cacheWriteInputTokens"] = u.cache_write_tokens
    return out


def error_event(message: str) -> bytes:
    """The payload of an ``internalServerException`` event (its framing is the caller's)."""
    return orjson.dumps({"message": message})


class StreamDecoder:
    """Upstream ConverseStream events -> canonical events."""

    __slots__ = ("_blocks", "_finish", "_finished", "_tools", "_usage")

    def __init__(self) -> None:
        self._blocks: dict[int, int] = {}
        """Content block index -> canonical tool-call index (toolUse blocks only)."""
        self._tools = 0
        self._finish: Finish | None = None
        """The stop reason, held until the usage arrives."""
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        body = orjson.loads(data) if data.strip() else {}
        if not isinstance(body, dict):
            return []
        if event == "contentBlockDelta":
            return self._delta(body["contentBlockIndex"], body.get("delta") or {})
        if event == "contentBlockStart":
            tool = (body.get("start") or {}).get("toolUse")
            if not isinstance(tool, dict):
                return []
            self._blocks[body["contentBlockIndex"]] = index = self._tools
            self._tools += 1
            return [ToolCallStart(index, str(tool["toolUseId"]), str(tool["name"]))]
        if event == "messageStart":
            return [Start(new_id("msg_"), "")]  # ConverseStream names neither
        if event == "messageStop":
            self._finish = Finish(finish_from_bedrock(body.get("stopReason")))
            return self._end()
        if event == "metadata":
            usage = body.get("usage")
            self._usage = usage_to_canonical(usage if isinstance(usage, dict) else {})
            return self._end()
        if event in EXCEPTIONS:
            self._finished = True
            return [StreamError(str(body.get("message") or event))]
        return []  # contentBlockStop, unknown future events

    def _delta(self, block: int, delta: dict[str, Any]) -> list[StreamEvent]:
        if "text" in delta:
            return [TextDelta(delta["text"])] if delta["text"] else []
        tool = delta.get("toolUse")
        if isinstance(tool, dict):
            index = self._blocks.get(block)
            if index is None or not tool.get("input"):
                return []
            return [ToolCallArgsDelta(index, tool["input"])]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            if reasoning.get("text"):
                return [ThinkingDelta(reasoning["text"])]
            if reasoning.get("signature"):
                return [ThinkingDelta("", signature=reasoning["signature"])]
            if reasoning.get("redactedContent"):
                return [ThinkingDelta(reasoning["redactedContent"], redacted=True)]
        return []  # citations, tool-result and image deltas of server tools

    def _end(self) -> list[StreamEvent]:
        if self._finish is None or self._usage is None or self._finished:
            return []
        self._finished = True
        return [self._usage, self._finish]

    def close(self) -> list[StreamEvent]:
        if self._finished:
            return []
        if self._finish is not None:  # the answer is complete, its usage was never sent
            self._finished = True
            return [self._finish]
        return [StreamError(INCOMPLETE)]
