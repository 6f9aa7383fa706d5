"""OpenAI chat completions <-> canonical, on golden captures and through the official SDK."""

from __future__ import annotations

import json

import openai
import pytest

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate import openai_chat
from gateway.translate.canonical import (
    ChatResponse,
    Finish,
    ImagePart,
    Start,
    StreamError,
    TextDelta,
    TextPart,
    ThinkingPart,
    ToolCallArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from gateway.translate.openai_chat_stream import INCOMPLETE
from tests.translate import sdk
from tests.translate.fixtures import decode_stream, encode_stream, load_bytes, load_json


def test_request_reads_system_images_tool_calls_and_results() -> None:
    req = openai_chat.request_to_canonical(load_json("openai/chat_request_tools.json"))
    assert req.system == ["You are a helpful travel assistant.", "Answer in one short paragraph."]
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    image = req.messages[0].parts[1]
    assert isinstance(image, ImagePart)
    assert image.media_type == "image/png" and image.data and image.data.startswith("iVBOR")
    assert image.detail == "low"
    calls = req.messages[1].parts
    assert [(c.id, c.name) for c in calls if isinstance(c, ToolCallPart)] == [
        ("call_Dm4kRZ1cXhXY0yXbQ7nB2a1c", "get_weather"),
        ("call_8sV0pQ3Lr2mN9tYc5wZx1uE4", "get_time"),
    ]
    results = req.messages[2].parts
    assert isinstance(results[0], ToolResultPart) and isinstance(results[1], ToolResultPart)
    assert results[1].content == [TextPart("14:05")]
    assert results[2] == TextPart("Thanks! Should I take an umbrella?")
    assert [t.name for t in req.tools] == ["get_weather", "get_time"]
    assert req.tool_choice is not None and req.tool_choice.mode == "auto"
    assert (req.max_tokens, req.temperature, req.top_p) == (512, 0.7, 0.9)
    assert req.stop == ["\n\nUser:"] and req.user == "user-1234" and req.extra == {}


def test_request_round_trip_keeps_the_conversation() -> None:
    body = load_json("openai/chat_request_tools.json")
    out = openai_chat.request_from_canonical(openai_chat.request_to_canonical(body), "gpt-4o")
    assert [m["role"] for m in out["messages"]] == [
        "system",
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
    ]
    assert out["messages"][3]["tool_calls"] == body["messages"][3]["tool_calls"]
    assert out["messages"][2]["content"] == body["messages"][2]["content"]
    assert out["messages"][5] == {
        "role": "tool",
        "tool_call_id": "call_8sV0pQ3Lr2mN9tYc5wZx1uE4",
        "content": "14:05",
    }
    assert out["tools"][0]["function"]["parameters"] == body["tools"][0]["function"]["parameters"]
    for key in ("tool_choice", "parallel_tool_calls", "temperature", "top_p", "stop", "user"):
        assert out[key] == body[key]
    assert out["max_tokens"] == 512 and "stream" not in out


def test_max_tokens_field_follows_the_model_family() -> None:
    req = openai_chat.request_to_canonical(load_json("openai/chat_request_tools.json"))
    assert openai_chat.request_from_canonical(req, "o3-mini")["max_completion_tokens"] == 512
    assert openai_chat.request_from_canonical(req, "gpt-5")["max_completion_tokens"] == 512
    assert openai_chat.request_from_canonical(req, "llama3.2")["max_tokens"] == 512


def test_streaming_request_always_asks_upstream_for_usage() -> None:
    body = load_json("openai/chat_request_json_schema.json")
    req = openai_chat.request_to_canonical(body)
    assert req.stream and req.include_usage
    assert req.response_format is not None and req.response_format.name == "calendar_event"
    body["stream_options"] = {"include_usage": False}
    req = openai_chat.request_to_canonical(body)
    assert not req.include_usage
    out = openai_chat.request_from_canonical(req, "gpt-4o-mini")
    assert out["stream_options"] == {"include_usage": True}
    assert out["response_format"] == body["response_format"]


@pytest.mark.parametrize(
    ("body", "error", "param"),
    [
        ({"messages": []}, BadRequest, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, BadRequest, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, BadRequest, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            BadRequest,
            "temperature",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            UnsupportedFeature,
            None,
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
                        ],
                    }
                ]
            },
            BadRequest,
            "messages[0].content[0].image_url.url",
        ),
    ],
)
def test_invalid_fields_name_the_field(body: dict, error: type, param: str | None) -> None:
    with pytest.raises(error) as info:
        openai_chat.request_to_canonical(body)
    if param is not None:
        assert info.value.param == param
        assert param in info.value.message


def test_unknown_fields_are_kept_for_openai_and_refused_elsewhere() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "mystery": True, "store": True}
    req = openai_chat.request_to_canonical(body)
    assert req.extra == {"mystery": True}
    assert req.dropped == {"store"}  # a hint (translate.policy), not an unknown
    assert openai_chat.request_from_canonical(req, "m")["mystery"] is True
    from gateway.translate import anthropic_messages

    with pytest.raises(UnsupportedFeature, match="mystery"):
        anthropic_messages.request_from_canonical(req, "claude")


def test_response_text_with_cached_usage() -> None:
    resp = openai_chat.response_to_canonical(load_json("openai/chat_response_text.json"))
    assert resp.finish_reason == "stop"
    assert resp.parts == [
        TextPart(load_json("openai/chat_response_text.json")["choices"][0]["message"]["content"])
    ]
    assert resp.usage == Usage(1117, 46, 1163, cached_prompt_tokens=1024)


def test_response_tool_calls_round_trip_through_the_sdk() -> None:
    body = load_json("openai/chat_response_tool_calls.json")
    resp = openai_chat.response_to_canonical(body)
    assert resp.finish_reason == "tool_calls"
    out = sdk.openai_chat_completion(openai_chat.response_from_canonical(resp, "my-route"))
    assert out.model == "my-route"
    assert out.choices[0].finish_reason == "tool_calls"
    got = [(c.id, c.function.name, c.function.arguments) for c in out.choices[0].message.tool_calls]
    want = [
        (c["id"], c["function"]["name"], c["function"]["arguments"])
        for c in body["choices"][0]["message"]["tool_calls"]
    ]
    assert got == want
    assert out.usage.prompt_tokens == 82 and out.usage.total_tokens == 99


def test_reasoning_content_is_read_and_written() -> None:
    body = {
        "id": "x",
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"},
            }
        ],
    }
    resp = openai_chat.response_to_canonical(body)
    assert resp.parts == [ThinkingPart("2+2"), TextPart("4")]
    assert (
        openai_chat.response_from_canonical(resp, "r")["choices"][0]["message"]["reasoning_content"]
        == "2+2"
    )


def test_stream_decoder_on_tool_call_fragments() -> None:
    events = decode_stream("openai", load_bytes("openai/chat_stream_tool_calls.sse"))
    assert events[0] == Start("chatcmpl-9xTqK3", "gpt-4o-2024-08-06")
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    args = "".join(
        e.partial_json for e in events if isinstance(e, ToolCallArgsDelta) and e.index == 0
    )
    assert json.loads(args) == {"location": "Paris, France"}
    assert Finish("tool_calls") in events
    assert events[-1] == Usage(88, 41, 129, cached_prompt_tokens=64)


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_encoder_output_is_what_the_sdk_accumulates(include_usage: bool) -> None:
    events = decode_stream("openai", load_bytes("openai/chat_stream_text.sse"))
    raw = encode_stream("openai", events, include_usage)
    assert raw.endswith(b"data: [DONE]\n\n")
    chunks = sdk.openai_chat_chunks(raw)
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == (1 if include_usage else 0)
    if include_usage:
        assert usage_chunks[0].usage.total_tokens == 29
    final = sdk.openai_chat_stream(raw)
    assert final.choices[0].message.content == "Hello! How can I help you today?"
    assert final.choices[0].finish_reason == "stop"


def test_stream_encoder_tool_calls_accumulate_in_the_sdk() -> None:
    events = decode_stream("openai", load_bytes("openai/chat_stream_tool_calls.sse"))
    final = sdk.openai_chat_stream(encode_stream("openai", events))
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"location": "Paris, France"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]


def test_stream_error_and_truncation_end_in_an_error_event() -> None:
    decoder = openai_chat.StreamDecoder()
    assert decoder.feed("", '{"error": {"message": "overloaded"}}') == [StreamError("overloaded")]
    assert decoder.close() == [StreamError(INCOMPLETE)]
    encoder = openai_chat.StreamEncoder("m")
    raw = encoder.feed(Start("id", "m")) + encoder.feed(TextDelta("par")) + encoder.close()
    assert b"[DONE]" not in raw
    with pytest.raises(openai.APIError, match="ended before"):
        sdk.openai_chat_chunks(raw)


def test_error_event_shape() -> None:
    raw = openai_chat.error_event("boom")
    assert raw.startswith(b"data: ") and json.loads(raw[6:])["error"]["message"] == "boom"


def test_response_from_canonical_maps_error_finish_to_stop() -> None:
    resp = ChatResponse("id", "m", [TextPart("x")], "error")
    assert openai_chat.response_from_canonical(resp, "m")["choices"][0]["finish_reason"] == "stop"


def test_stream_decoder_copes_with_servers_that_repeat_or_reuse_indexes() -> None:
    def chunk(call: dict) -> str:
        return json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})

    decoder = openai_chat.StreamDecoder()
    events = []
    for call in [
        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x"'}},
        {"index": 0, "id": "call_a", "function": {"arguments": ": 1}"}},
        {"index": 0, "id": "call_b", "function": {"name": "g", "arguments": "{}"}},
    ]:
        events.extend(decoder.feed("", chunk(call)))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.id) for s in starts] == [(0, "call_a"), (1, "call_b")]
    assert [e for e in events if isinstance(e, ToolCallArgsDelta)] == [
        ToolCallArgsDelta(0, '{"x"'),
        ToolCallArgsDelta(0, ": 1}"),
        ToolCallArgsDelta(1, "{}"),
    ]
