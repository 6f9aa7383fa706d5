"""A real HTTP fake of the OpenAI, Anthropic and Gemini APIs whose answers report a
prompt-cached, reasoning answer: the shared fake's answers (tests/support/fake_replies), with
the usage rewritten into the fields and events each real API reports it in.

- OpenAI chat: `usage.prompt_tokens_details.cached_tokens` (inside prompt_tokens) and
  `usage.completion_tokens_details.reasoning_tokens` (inside completion_tokens); a stream
  reports it in a last chunk with no choices, when `stream_options.include_usage` asks.
- OpenAI Responses: `input_tokens_details.cached_tokens`, `output_tokens_details.
  reasoning_tokens`; a stream reports it in `response.completed`.
- Anthropic: `input_tokens` leaves out `cache_read_input_tokens` and
  `cache_creation_input_tokens`; a stream reports them in `message_start` and the output in
  `message_delta` (`output_tokens` only, or every count cumulated: CUMULATIVE_DELTA).
- Gemini: `promptTokenCount` includes `cachedContentTokenCount`; `thoughtsTokenCount` is
  reported beside `candidatesTokenCount`, not inside it; each stream chunk carries the usage
  so far, the last one all of it.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.support.fake_replies import reply_for
from tests.support.loop_thread import ServedApp

# OpenAI: 1000 prompt tokens of which 200 cached; 500 completion of which 300 reasoning.
OPENAI_CHAT_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 300,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_RESPONSES_USAGE = {
    "input_tokens": 1000,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 500,
    "output_tokens_details": {"reasoning_tokens": 300},
    "total_tokens": 1500,
}
# Anthropic: 300 fresh input tokens, 600 read from the cache, 100 written to it; 500 output
# (thinking included: the API does not count it apart).
ANTHROPIC_START_USAGE = {
    "input_tokens": 300,
    "cache_read_input_tokens": 600,
    "cache_creation_input_tokens": 100,
    "output_tokens": 1,
}
ANTHROPIC_USAGE = {**ANTHROPIC_START_USAGE, "output_tokens": 500}
# Gemini: 1000 prompt tokens of which 600 cached; 300 answer and 200 thought tokens.
GEMINI_USAGE = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 600,
    "candidatesTokenCount": 300,
    "thoughtsTokenCount": 200,
    "totalTokenCount": 1500,
}
GEMINI_PROMPT_USAGE = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 600,
    "totalTokenCount": 1000,
}


class CachedUsageUpstream(ServedApp):
    """The fake on its own loop thread; `cumulative_delta` makes Anthropic's message_delta
    repeat every count (as newer API versions do) instead of the output alone."""

    def __init__(self) -> None:
        super().__init__()
        self.cumulative_delta = False
        self.paths: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.paths.append(request.path)
        reply = reply_for(request.path, body, chunks=3)
        if reply.events is None:
            assert reply.body is not None
            return web.json_response(self._rewrite(request.path, reply.body))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in reply.events:
            await response.write(self._rewrite_event(request.path, event))
        await response.write_eof()
        return response

    def _rewrite_event(self, path: str, event: bytes) -> bytes:
        name, data = None, ""
        for line in event.decode().splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
        if data == "[DONE]":
            return event
        rewritten = json.dumps(self._rewrite(path, json.loads(data)))
        return (f"event: {name}\n" if name else "").encode() + f"data: {rewritten}\n\n".encode()

    def _rewrite(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        if "usageMetadata" in data:  # Gemini
            done = "candidatesTokenCount" in data["usageMetadata"]
            return {**data, "usageMetadata": GEMINI_USAGE if done else GEMINI_PROMPT_USAGE}
        kind = data.get("type")
        if kind == "message_start":
            return {**data, "message": {**data["message"], "usage": ANTHROPIC_START_USAGE}}
        if kind == "message_delta":
            usage = ANTHROPIC_USAGE if self.cumulative_delta else {"output_tokens": 500}
            return {**data, "usage": usage}
        if kind == "response.completed":
            return {**data, "response": {**data["response"], "usage": OPENAI_RESPONSES_USAGE}}
        if data.get("usage") is None:  # OpenAI chunks before the last carry `usage: null`
            return data
        if path.endswith("/messages"):
            return {**data, "usage": ANTHROPIC_USAGE}
        if path.endswith("/responses"):
            return {**data, "usage": OPENAI_RESPONSES_USAGE}
        return {**data, "usage": OPENAI_CHAT_USAGE}
