"""OpenAI Responses API stream events <-> canonical stream events.

The encoder writes the event sequence the official SDK's ``ResponseStreamState`` checks:
``response.created``, ``response.in_progress``; per output item ``output_item.added``,
its parts and deltas (``content_part.added`` / ``output_text.delta`` / ``.done``,
``function_call_arguments.delta`` / ``.done``, ``reasoning_summary_part.added`` /
``reasoning_summary_text.delta`` / ``.done``) and ``output_item.done``; then
``response.completed`` (or ``response.incomplete``) carrying the whole response and usage.
Every event has a growing ``sequence_number``.
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

INCOMPLETE = "The upstream stream ended before the answer was complete; retry the request."


def usage_to_canonical(u: dict[str, Any]) -> Usage:
    prompt = count(u.get("input_tokens"))
    completion = count(u.get("output_tokens"))
    details = counts(u, "input_tokens_details")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=count(u.get("total_tokens")) or prompt + completion,
        cached_prompt_tokens=count(details.get("cached_tokens")),
        cache_write_tokens=count(details.get("cache_write_tokens")),
        reasoning_tokens=count(counts(u, "output_tokens_details").get("reasoning_tokens")),
    )


def usage_from_canonical(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_prompt_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def status_of(reason: FinishReason) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details) of a finished response."""
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def finish_of(body: dict[str, Any]) -> FinishReason:
    status = body.get("status")
    if status == "failed":
        return "error"
    if status == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    output = body.get("output") or ()
    if any(item.get("type") == "function_call" for item in output):
        return "tool_calls"
    return "stop"


def response_body(
    resp_id: str, model: str, created: int, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``Response`` object with the fields the SDK types require."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
    }


def _event(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def error_event(message: str, sequence_number: int = 0) -> bytes:
    body = {
        "type": "error",
        "code": "server_error",
        "message": message,
        "param": None,
        "sequence_number": sequence_number,
    }
    return _event("error", body)


class StreamDecoder:
    """Responses API events -> canonical events."""

    __slots__ = ("_finished", "_items")

    def __init__(self) -> None:
        self._items: dict[str, int] = {}
        """Function-call item id -> canonical tool-call index."""
        self._finished = False

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        body = orjson.loads(data)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "response.output_text.delta":
            return [TextDelta(body["delta"])]
        if kind == "response.function_call_arguments.delta":
            index = self._items.get(body.get("item_id", ""))
            return [] if index is None else [ToolCallArgsDelta(index, body["delta"])]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ThinkingDelta(body["delta"])]
        if kind == "response.output_item.added":
            item = body.get("item") or {}
            if item.get("type") == "function_call":
                index = self._items[item.get("id") or item.get("call_id", "")] = len(self._items)
                return [ToolCallStart(index, item.get("call_id", ""), item.get("name", ""))]
            return []
        if kind == "response.output_item.done":
            item = body.get("item") or {}
            if item.get("type") == "reasoning" and item.get("encrypted_content"):
                return [ThinkingDelta("", signature=item["encrypted_content"])]
            return []
        if kind == "response.created":
            response = body.get("response") or {}
            return [Start(str(response.get("id", "")), str(response.get("model", "")))]
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self._finished = True
            response = body.get("response") or {}
            usage = response.get("usage")
            out: list[StreamEvent] = [Finish(finish_of(response))]
            out.append(usage_to_canonical(usage) if isinstance(usage, dict) else Usage())
            return out
        if kind == "error":
            return [StreamError(str(body.get("message") or "upstream error"))]
        return []

    def close(self) -> list[StreamEvent]:
        return [] if self._finished else [StreamError(INCOMPLETE)]


class StreamEncoder:
    """Canonical events -> Responses API SSE bytes, one event at a time."""

    __slots__ = (
        "_created",
        "_finish",
        "_id",
        "_item",
        "_model",
        "_output",
        "_seq",
        "_state",
        "_tools",
        "_usage",
    )

    def __init__(self, client_model: str, include_usage: bool = False) -> None:
        self._model = client_model
        self._id = ""
        self._created = 0
        self._seq = 0
        self._state = "new"  # new -> open -> done
        self._output: list[dict[str, Any]] = []
        self._item: dict[str, Any] | None = None
        """The output item being streamed."""
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish: Finish | None = None
        self._usage: Usage | None = None

    def _emit(self, event_type: str, /, **fields: Any) -> bytes:
        body = {"type": event_type, "sequence_number": self._seq, **fields}
        self._seq += 1
        return _event(event_type, body)

    def _start(self, resp_id: str) -> bytes:
        self._state = "open"
        self._id = resp_id if resp_id.startswith("resp_") else "resp_" + (resp_id or new_id(""))
        self._created = now()
        base = response_body(self._id, self._model, self._created, "in_progress", [])
        return self._emit("response.created", response=base) + self._emit(
            "response.in_progress", response=base
        )

    def feed(self, ev: StreamEvent) -> bytes:
        if self._state == "done":
            return b""
        if isinstance(ev, StreamError):
            return self._fail(ev.message)
        out = b"" if self._state == "open" else self._start(ev.id if isinstance(ev, Start) else "")
        if isinstance(ev, TextDelta):
            if self._kind() != "message":
                out += self._close_item() + self._open_message()
            item = self._item
            assert item is not None
            item["_text"].append(ev.text)
            return out + self._emit(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=item["_index"],
                content_index=0,
                delta=ev.text,
                logprobs=[],
            )
        if isinstance(ev, ToolCallArgsDelta):
            call = self._tools.get(ev.index)
            if call is None:
                return out
            call["_text"].append(ev.partial_json)
            return out + self._emit(
                "response.function_call_arguments.delta",
                item_id=call["id"],
                output_index=call["_index"],
                delta=ev.partial_json,
            )
        if isinstance(ev, ToolCallStart):
            out += self._close_item()
            call = {
                "id": "fc_" + ev.id.removeprefix("call_"),
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": ev.id,
                "name": ev.name,
            }
            if ev.namespace is not None:  # a namespace tool's call, as the client named it
                call["namespace"] = ev.namespace
            self._tools[ev.index] = self._open(call)
            return out + self._added()
        if isinstance(ev, ThinkingDelta):
            return out + self._thinking(ev)
        if isinstance(ev, Finish):
            self._finish = ev
        elif isinstance(ev, Usage):  # the latest is final: close() sends it
            self._usage = ev
        return out

    def _kind(self) -> str | None:
        return None if self._item is None else str(self._item["type"])

    def _open(self, item: dict[str, Any]) -> dict[str, Any]:
        item["_index"] = len(self._output)
        item["_text"] = []
        self._output.append(item)
        self._item = item
        return item

    def _public(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _added(self) -> bytes:
        item = self._item
        assert item is not None
        return self._emit(
            "response.output_item.added", output_index=item["_index"], item=self._public(item)
        )

    def _open_message(self) -> bytes:
        item: dict[str, Any] = {
            "id": f"msg_{self._id[5:]}_{len(self._output)}",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self._open(item)
        part = {"type": "output_text", "text": "", "annotations": []}
        return self._added() + self._emit(
            "response.content_part.added",
            item_id=item["id"],
            output_index=item["_index"],
            content_index=0,
            part=part,
        )

    def _thinking(self, ev: ThinkingDelta) -> bytes:
        out = b""
        if self._kind() != "reasoning" or (self._item and self._item.get("encrypted_content")):
            out = self._close_item()
            rs_id = f"rs_{self._id[5:]}_{len(self._output)}"
            self._open({"id": rs_id, "type": "reasoning", "summary": []})
            out += self._added() + self._emit(
                "response.reasoning_summary_part.added",
                item_id=rs_id,
                output_index=len(self._output) - 1,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
        item = self._item
        assert item is not None
        if ev.signature:
            item["encrypted_content"] = ev.signature
        if ev.text and not ev.redacted:
            item["_text"].append(ev.text)
            out += self._emit(
                "response.reasoning_summary_text.delta",
                item_id=item["id"],
                output_index=item["_index"],
                summary_index=0,
                delta=ev.text,
            )
        return out

    def _close_item(self) -> bytes:
        item, self._item = self._item, None
        if item is None:
            return b""
        text = "".join(item["_text"])
        ids = {"item_id": item["id"], "output_index": item["_index"]}
        out = b""
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            out += self._emit(
                "response.output_text.done", **ids, content_index=0, text=text, logprobs=[]
            )
            out += self._emit("response.content_part.done", **ids, content_index=0, part=part)
            item["content"] = [part]
        elif item["type"] == "function_call":
            item["arguments"] = text
            out += self._emit(
                "response.function_call_arguments.done", **ids, arguments=text, name=item["name"]
            )
        else:
            part = {"type": "summary_text", "text": text}
            out += self._emit(
                "response.reasoning_summary_text.done", **ids, summary_index=0, text=text
            )
            out += self._emit(
                "response.reasoning_summary_part.done", **ids, summary_index=0, part=part
            )
            item["summary"] = [part]
        if "status" in item:
            item["status"] = "completed"
        public = self._public(item)
        self._output[item["_index"]] = public
        return out + self._emit(
            "response.output_item.done", output_index=ids["output_index"], item=public
        )

    def _complete(self) -> bytes:
        out = self._close_item()
        for call in self._tools.values():  # late argument deltas of closed calls
            if call["arguments"] != "".join(call["_text"]):
                self._output[call["_index"]]["arguments"] = "".join(call["_text"])
        self._state = "done"
        finish = self._finish or Finish("stop")
        status, details = status_of(finish.reason)
        body = response_body(self._id, self._model, self._created, status, self._output)
        body["incomplete_details"] = details
        body["usage"] = usage_from_canonical(self._usage or Usage())
        name = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._emit(name, response=body)

    def _fail(self, message: str) -> bytes:
        out = b"" if self._state == "open" else self._start("")
        self._state = "done"
        out += error_event(message, self._seq)
        self._seq += 1
        body = response_body(self._id, self._model, self._created, "failed", self._output)
        body["error"] = {"code": "server_error", "message": message}
        return out + self._emit("response.failed", response=body)

    def close(self) -> bytes:
        """The stream's tail: the completion, or a failure when it never finished.

        ``response.completed`` waits for the upstream's end: a client leaves at it, and the
        gateway settles the final usage before it."""
        if self._state == "done":
            return b""
        if self._finish is None:
            return self._fail(INCOMPLETE)
        out = b"" if self._state == "open" else self._start("")
        return out + self._complete()
