"""The fake upstream answers what the real APIs answer, read by the official SDKs directly
(no gateway): Responses bodies whole and streamed, function calls in Responses, structured
output in every protocol, and Anthropic system messages inside `messages`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_ARGS
from tests.support.fake_upstream import FakeUpstream

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOL = {
    "type": "function",
    "name": "weather",
    "description": "The weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def oai(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=0) as client:
        yield client


def test_a_streamed_responses_answer_is_the_official_event_sequence(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="m", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "Hello from the fake upstream."
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )


def test_a_responses_function_call_whole_and_streamed(oai: openai.OpenAI) -> None:
    whole = oai.responses.create(model="m", input="weather?", tools=[TOOL])  # type: ignore[list-item]
    (call,) = whole.output
    assert call.type == "function_call" and call.name == "weather"
    assert call.arguments == TOOL_ARGS
    with oai.responses.stream(model="m", input="weather?", tools=[TOOL]) as stream:  # type: ignore[list-item]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    (streamed,) = final.output
    assert streamed.type == "function_call" and streamed.arguments == TOOL_ARGS
    answered = [
        {
            "type": "function_call",
            "call_id": streamed.call_id,
            "name": "weather",
            "arguments": TOOL_ARGS,
        },
        {"type": "function_call_output", "call_id": streamed.call_id, "output": "sunny"},
    ]
    after = oai.responses.create(model="m", input=answered, tools=[TOOL])  # type: ignore[arg-type, list-item]
    assert after.output_text == "Hello from the fake upstream."


def test_structured_output_is_an_instance_of_the_schema(
    oai: openai.OpenAI, fake: FakeUpstream
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA}}
    chat = oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "plan"}],
        response_format=fmt,  # type: ignore[arg-type]
    )
    assert json.loads(chat.choices[0].message.content or "") == {"city": "ok", "days": 0}
    text = {"format": {"type": "json_schema", "name": "trip", "schema": SCHEMA}}
    response = oai.responses.create(model="m", input="plan", text=text)  # type: ignore[arg-type]
    assert json.loads(response.output_text) == {"city": "ok", "days": 0}
    options = genai_types.HttpOptions(base_url=fake.url)
    with genai.Client(api_key="k", http_options=options) as gemini:
        config = genai_types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=SCHEMA
        )
        answer = gemini.models.generate_content(model="m", contents="plan", config=config)
    assert json.loads(answer.text or "") == {"city": "ok", "days": 0}


def test_anthropic_system_messages_are_not_a_turn(fake: FakeUpstream) -> None:
    tool = {"name": "weather", "input_schema": {"type": "object"}}
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
        },
        {"role": "system", "content": "A reminder the client adds after the result."},
    ]
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0) as client:
        answer = client.messages.create(
            model="m",
            max_tokens=32,
            messages=messages,  # type: ignore[arg-type]
            tools=[tool],  # type: ignore[list-item]
        )
    assert answer.stop_reason == "end_turn"  # the result was read: no second call
