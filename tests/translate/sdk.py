"""The official SDKs reading what the encoders wrote, through an in-memory transport.

No socket is opened: each client gets an ``httpx2.MockTransport`` that answers every
request with the given bytes, so the SDK's own SSE parsing, stream accumulation and
pydantic types judge the output.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
from google import genai
from google.genai import types as genai_types

from gateway.translate.sse import SSEParser

BASE = "http://127.0.0.1:9"


def _transport(content: bytes, content_type: str) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=content, headers={"content-type": content_type})

    return httpx2.MockTransport(handler)


def sse_json(raw: bytes) -> list[tuple[str, Any]]:
    """(event name, parsed data) of every event, ``[DONE]`` kept as a string."""
    parser = SSEParser()
    events = parser.feed(raw) + parser.close()
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in events]


def _openai(content: bytes, content_type: str) -> openai.OpenAI:
    client = httpx2.Client(transport=_transport(content, content_type))
    return openai.OpenAI(
        api_key="sk-test", base_url=BASE + "/v1", http_client=client, max_retries=0
    )


def openai_chat_stream(raw: bytes) -> Any:
    """The SDK's accumulated ``ParsedChatCompletion`` of a chat stream."""
    client = _openai(raw, "text/event-stream")
    with client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}]
    ) as s:
        for _ in s:
            pass
        return s.get_final_completion()


def openai_chat_chunks(raw: bytes) -> list[Any]:
    """Every chunk the SDK yields from ``create(stream=True)``, strictly validated."""
    from openai.types.chat import ChatCompletionChunk

    client = _openai(raw, "text/event-stream")
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return [ChatCompletionChunk.model_validate(c.model_dump()) for c in stream]


def openai_chat_completion(body: dict[str, Any]) -> Any:
    from openai.types.chat import ChatCompletion

    client = _openai(json.dumps(body).encode(), "application/json")
    got = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    return ChatCompletion.model_validate(got.model_dump())


def openai_responses_stream(raw: bytes) -> Any:
    client = _openai(raw, "text/event-stream")
    with client.responses.stream(model="m", input="hi") as s:
        for _ in s:
            pass
        return s.get_final_response()


def openai_response(body: dict[str, Any]) -> Any:
    from openai.types.responses import Response

    client = _openai(json.dumps(body).encode(), "application/json")
    got = client.responses.create(model="m", input="hi")
    return Response.model_validate(got.model_dump())


def _anthropic(content: bytes, content_type: str) -> anthropic.Anthropic:
    client = httpx2.Client(transport=_transport(content, content_type))
    return anthropic.Anthropic(api_key="k", base_url=BASE, http_client=client, max_retries=0)


def anthropic_stream(raw: bytes) -> Any:
    """The SDK's final ``Message`` of a stream (its ``accumulate_event`` at work)."""
    client = _anthropic(raw, "text/event-stream")
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        for _ in s:
            pass
        return s.get_final_message()


def anthropic_events(raw: bytes) -> list[Any]:
    """Every raw stream event, strictly validated against the SDK's union type."""
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    return [adapter.validate_python(data) for _, data in sse_json(raw)]


def anthropic_message(body: dict[str, Any]) -> Any:
    from anthropic.types import Message

    client = _anthropic(json.dumps(body).encode(), "application/json")
    got = client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    return Message.model_validate(got.model_dump())


def _genai(content: bytes, content_type: str) -> genai.Client:
    client = httpx2.Client(transport=_transport(content, content_type))
    options = genai_types.HttpOptions(base_url=BASE, httpx_client=client)
    return genai.Client(api_key="k", http_options=options)


def gemini_stream(raw: bytes) -> list[genai_types.GenerateContentResponse]:
    client = _genai(raw, "text/event-stream")
    chunks = list(client.models.generate_content_stream(model="m", contents="hi"))
    for _, data in sse_json(raw):
        genai_types.GenerateContentResponse.model_validate(data)
    return chunks


def gemini_response(body: dict[str, Any]) -> genai_types.GenerateContentResponse:
    client = _genai(json.dumps(body).encode(), "application/json")
    got = client.models.generate_content(model="m", contents="hi")
    genai_types.GenerateContentResponse.model_validate(body)
    return got
