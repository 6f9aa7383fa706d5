"""A scripted upstream on 127.0.0.1 that speaks every wire protocol a provider type uses:
OpenAI chat completions (also under Azure's deployment paths), OpenAI Responses, Anthropic
Messages and Gemini generateContent, each streamed or whole, as their API references define.

What it answers is decided by `agent_script.Script`; every answer reports the same usage, so
a test can check that the gateway recorded exactly what the upstream reported.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.clients import agent_script as script
from tests.clients.agent_script import COMPLETION_TOKENS, PROMPT_TOKENS, Script, Text, ToolCall
from tests.support.loop_thread import ServedApp


@dataclass(frozen=True)
class Served:
    path: str
    body: dict[str, Any]
    status: int


class AgentUpstream(ServedApp):
    def __init__(self) -> None:
        super().__init__()
        self.script = Script()
        self.served: list[Served] = []
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def answers(self) -> int:
        """Answers that reported usage (PROMPT_TOKENS + COMPLETION_TOKENS each)."""
        with self._lock:
            return sum(1 for s in self.served if s.status == 200 and not _is_count(s.path))

    def reset(self, plan: Script) -> None:
        with self._lock:
            self.script = plan
            self.served.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "GET":
            return web.json_response({"object": "list", "data": []})
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._record(path, {}, web.json_response({"error": "not JSON"}, status=400))
        if path.endswith("/messages/count_tokens"):
            return self._record(path, body, web.json_response({"input_tokens": PROMPT_TOKENS}))
        if path.endswith(":countTokens"):
            return self._record(path, body, web.json_response({"totalTokens": PROMPT_TOKENS}))
        if path.endswith("/chat/completions"):
            seen, wire = script.read_openai_chat(body), _OpenAIChat(body)
        elif path.endswith("/responses"):
            seen, wire = script.read_responses(body), _Responses(body)
        elif path.endswith("/messages"):
            seen, wire = script.read_anthropic(body), _Anthropic(body)
        elif ":generateContent" in path or ":streamGenerateContent" in path:
            seen, wire = script.read_gemini(body), _Gemini(body)
        else:
            return self._record(path, body, web.json_response({"error": path}, status=404))
        decision = self.script.decide(seen)
        streamed = ":streamGenerateContent" in path or body.get("stream") is True
        if not streamed:
            return self._record(path, body, web.json_response(wire.whole(decision)))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        self._record(path, body, response)  # before its end: a client may hang up right there
        await response.prepare(request)
        for event in wire.events(decision):
            await response.write(event)
        await response.write_eof()
        return response

    def _record(self, path: str, body: dict[str, Any], response: web.StreamResponse) -> Any:
        with self._lock:
            self.served.append(Served(path, body, response.status))
        return response


def _is_count(path: str) -> bool:
    return path.endswith("/count_tokens") or path.endswith(":countTokens")


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class _OpenAIChat:
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body.get("model", "scripted")
        self.usage_chunk = bool((body.get("stream_options") or {}).get("include_usage"))
        self.base = {"id": "chatcmpl-scripted", "created": 1700000000, "model": self.model}

    @staticmethod
    def usage() -> dict[str, int]:
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }

    def whole(self, decision: ToolCall | Text) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(decision, ToolCall):
            message["tool_calls"] = [_chat_call(decision)]
            finish = "tool_calls"
        else:
            message["content"], finish = decision.text, "stop"
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        usage = self.usage()
        return {**self.base, "object": "chat.completion", "choices": [choice], "usage": usage}

    def events(self, decision: ToolCall | Text) -> list[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return _sse({**self.base, "object": "chat.completion.chunk", "choices": [choice]})

        out = [chunk({"role": "assistant", "content": ""})]
        if isinstance(decision, ToolCall):
            out.append(chunk({"tool_calls": [{"index": 0, **_chat_call(decision)}]}))
            out.append(chunk({}, "tool_calls"))
        else:
            out.append(chunk({"content": decision.text}))
            out.append(chunk({}, "stop"))
        if self.usage_chunk:
            usage = {"choices": [], "usage": self.usage()}
            out.append(_sse({**self.base, "object": "chat.completion.chunk", **usage}))
        out.append(_sse("[DONE]"))
        return out


def _chat_call(call: ToolCall) -> dict[str, Any]:
    arguments = json.dumps(call.arguments)
    return {
        "id": "call_scripted",
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


class _Responses:
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body.get("model", "scripted")
        self.sequence = 0

    def _item(self, decision: ToolCall | Text) -> dict[str, Any]:
        if isinstance(decision, ToolCall):
            return {
                "type": "function_call",
                "id": "fc_scripted",
                "call_id": "call_scripted",
                "name": decision.name,
                "arguments": json.dumps(decision.arguments),
                "status": "completed",
            }
        part = {"type": "output_text", "text": decision.text, "annotations": []}
        return {
            "type": "message",
            "id": "msg_scripted",
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }

    def whole(self, decision: ToolCall | Text, status: str = "completed") -> dict[str, Any]:
        done = status == "completed"
        return {
            "id": "resp_scripted",
            "object": "response",
            "created_at": 1700000000,
            "status": status,
            "model": self.model,
            "output": [self._item(decision)] if done else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": COMPLETION_TOKENS,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            }
            if done
            else None,
        }

    def _event(self, kind: str, **data: Any) -> bytes:
        self.sequence += 1
        return _sse({"type": kind, "sequence_number": self.sequence, **data}, kind)

    def events(self, decision: ToolCall | Text) -> list[bytes]:
        item = self._item(decision)
        started = {**item, "status": "in_progress"}
        out = [
            self._event("response.created", response=self.whole(decision, "in_progress")),
            self._event("response.in_progress", response=self.whole(decision, "in_progress")),
        ]
        at = {"output_index": 0, "item_id": item["id"]}
        if isinstance(decision, ToolCall):
            out.append(
                self._event(
                    "response.output_item.added", output_index=0, item={**started, "arguments": ""}
                )
            )
            out.append(
                self._event("response.function_call_arguments.delta", **at, delta=item["arguments"])
            )
            out.append(
                self._event(
                    "response.function_call_arguments.done", **at, arguments=item["arguments"]
                )
            )
        else:
            empty = {"type": "output_text", "text": "", "annotations": []}
            out.append(
                self._event(
                    "response.output_item.added", output_index=0, item={**started, "content": []}
                )
            )
            out.append(
                self._event("response.content_part.added", **at, content_index=0, part=empty)
            )
            text = item["content"][0]["text"]
            out.append(
                self._event(
                    "response.output_text.delta", **at, content_index=0, delta=text, logprobs=[]
                )
            )
            out.append(
                self._event(
                    "response.output_text.done", **at, content_index=0, text=text, logprobs=[]
                )
            )
            out.append(
                self._event(
                    "response.content_part.done", **at, content_index=0, part=item["content"][0]
                )
            )
        out.append(self._event("response.output_item.done", output_index=0, item=item))
        out.append(self._event("response.completed", response=self.whole(decision)))
        return out


class _Anthropic:
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body.get("model", "scripted")

    def _block(self, decision: ToolCall | Text) -> dict[str, Any]:
        if isinstance(decision, ToolCall):
            return {
                "type": "tool_use",
                "id": "toolu_scripted",
                "name": decision.name,
                "input": decision.arguments,
            }
        return {"type": "text", "text": decision.text}

    def whole(self, decision: ToolCall | Text) -> dict[str, Any]:
        return {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [self._block(decision)],
            "stop_reason": "tool_use" if isinstance(decision, ToolCall) else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS},
        }

    def events(self, decision: ToolCall | Text) -> list[bytes]:
        message = {**self.whole(decision), "content": [], "stop_reason": None}
        message["usage"] = {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}
        block = self._block(decision)
        if isinstance(decision, ToolCall):
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(decision.arguments)}
        else:
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": decision.text}
        final = self.whole(decision)
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": start},
                "content_block_start",
            ),
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
            ),
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": COMPLETION_TOKENS},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


class _Gemini:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def whole(self, decision: ToolCall | Text) -> dict[str, Any]:
        if isinstance(decision, ToolCall):
            part: dict[str, Any] = {
                "functionCall": {"name": decision.name, "args": decision.arguments}
            }
        else:
            part = {"text": decision.text}
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": PROMPT_TOKENS,
                "candidatesTokenCount": COMPLETION_TOKENS,
                "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS,
            },
            "modelVersion": "scripted",
            "responseId": "scripted",
        }

    def events(self, decision: ToolCall | Text) -> list[bytes]:
        return [_sse(self.whole(decision))]
