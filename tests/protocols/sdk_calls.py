"""The same conversations, each written with one official SDK as its users write them.

Every function returns what the SDK itself made of the gateway's answer, so the tests
judge the wire format by the SDK's parsing, accumulation and types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.genai import types as genai_types

from tests.protocols.conftest import Matrix

QUESTION = "What is the weather in Paris?"
TOOL_RESULT = "Sunny, 21 C"
TOOL_NAME = "get_weather"
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city"}},
    "required": ["city"],
}


@dataclass
class Answer:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass
class RoundTrip:
    call_name: str
    call_args: dict[str, Any]
    final_text: str


# -- text ----------------------------------------------------------------------------------


def text(m: Matrix, client: str, model: str) -> Answer:
    if client == "openai":
        done = m.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        assert done.usage is not None
        return Answer(
            done.choices[0].message.content or "",
            done.usage.prompt_tokens,
            done.usage.completion_tokens,
        )
    if client == "anthropic":
        message = m.anthropic().messages.create(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        texts = [b.text for b in message.content if b.type == "text"]
        return Answer("".join(texts), message.usage.input_tokens, message.usage.output_tokens)
    with m.gemini() as gemini:
        response = gemini.models.generate_content(model=model, contents="hi")
    usage = response.usage_metadata
    assert usage is not None
    return Answer(response.text or "", usage.prompt_token_count, usage.candidates_token_count)


def stream(m: Matrix, client: str, model: str) -> tuple[Answer, int]:
    """The streamed answer, and how many pieces of text it came in."""
    if client == "openai":
        chunks = list(
            m.openai().chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        pieces = [c.choices[0].delta.content for c in chunks if c.choices]
        usage = chunks[-1].usage
        assert usage is not None
        answer = Answer(
            "".join(p or "" for p in pieces), usage.prompt_tokens, usage.completion_tokens
        )
        return answer, sum(1 for p in pieces if p)
    if client == "anthropic":
        with m.anthropic().messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as events:
            pieces = list(events.text_stream)
            message = events.get_final_message()
        texts = "".join(b.text for b in message.content if b.type == "text")
        assert texts == "".join(pieces)
        usage = message.usage
        return Answer(texts, usage.input_tokens, usage.output_tokens), len(pieces)
    with m.gemini() as gemini:
        chunks = list(gemini.models.generate_content_stream(model=model, contents="hi"))
    pieces = [c.text for c in chunks if c.text]
    usage = chunks[-1].usage_metadata
    assert usage is not None
    answer = Answer("".join(pieces), usage.prompt_token_count, usage.candidates_token_count)
    return answer, len(pieces)


# -- tools ---------------------------------------------------------------------------------


def tool_round_trip(m: Matrix, client: str, model: str) -> RoundTrip:
    """Offer a tool, take the streamed call, send its result back, read the final text."""
    if client == "openai":
        return _openai_tools(m, model)
    if client == "anthropic":
        return _anthropic_tools(m, model)
    return _gemini_tools(m, model)


def _openai_tools(m: Matrix, model: str) -> RoundTrip:
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": TOOL_NAME,
                "description": "The weather of a city",
                "parameters": TOOL_SCHEMA,
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    sdk = m.openai()
    with sdk.chat.completions.stream(model=model, messages=messages, tools=tools) as events:
        for _ in events:
            pass
        completion = events.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    args = json.loads(call.function.arguments)
    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT})
    final = sdk.chat.completions.create(model=model, messages=messages, tools=tools)
    return RoundTrip(call.function.name, args, final.choices[0].message.content or "")


def _anthropic_tools(m: Matrix, model: str) -> RoundTrip:
    tools: list[Any] = [
        {"name": TOOL_NAME, "description": "The weather of a city", "input_schema": TOOL_SCHEMA}
    ]
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    sdk = m.anthropic()
    with sdk.messages.stream(model=model, max_tokens=256, messages=messages, tools=tools) as s:
        json_pieces = [e for e in s if e.type == "content_block_delta"]
        message = s.get_final_message()
    assert message.stop_reason == "tool_use"
    assert any(e.delta.type == "input_json_delta" for e in json_pieces)
    uses = [b for b in message.content if b.type == "tool_use"]
    assert len(uses) == 1
    use = uses[0]
    messages.append({"role": "assistant", "content": [b.to_dict() for b in message.content]})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}],
        }
    )
    final = sdk.messages.create(model=model, max_tokens=256, messages=messages, tools=tools)
    texts = "".join(b.text for b in final.content if b.type == "text")
    assert isinstance(use.input, dict)
    return RoundTrip(use.name, dict(use.input), texts)


def _gemini_tools(m: Matrix, model: str) -> RoundTrip:
    declaration = genai_types.FunctionDeclaration(
        name=TOOL_NAME, description="The weather of a city", parameters_json_schema=TOOL_SCHEMA
    )
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(function_declarations=[declaration])]
    )
    question = genai_types.Content(role="user", parts=[genai_types.Part(text=QUESTION)])
    with m.gemini() as gemini:
        chunks = list(
            gemini.models.generate_content_stream(model=model, contents=[question], config=config)
        )
        parts = [
            p
            for c in chunks
            for cand in c.candidates or []
            if cand.content is not None
            for p in cand.content.parts or []
        ]
        calls = [p.function_call for p in parts if p.function_call is not None]
        assert len(calls) == 1
        call = calls[0]
        assert call.name is not None
        answer = genai_types.Part.from_function_response(
            name=call.name, response={"result": TOOL_RESULT}
        )
        history = [
            question,
            genai_types.Content(role="model", parts=[p for p in parts if p.function_call]),
            genai_types.Content(role="user", parts=[answer]),
        ]
        final = gemini.models.generate_content(model=model, contents=history, config=config)
    return RoundTrip(call.name, dict(call.args or {}), final.text or "")
