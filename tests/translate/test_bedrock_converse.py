"""Bedrock Converse <-> canonical, on golden bodies shaped after the AWS API reference and
judged by botocore's own model of the API (its parameter validator and response parser)."""

from __future__ import annotations

import binascii
import json
import struct
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.parsers import RestJSONParser
from botocore.session import get_session
from botocore.validate import ParamValidator

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate import bedrock_converse, openai_chat
from gateway.translate.anthropic_messages import JSON_INSTRUCTION
from gateway.translate.bedrock_converse_stream import INCOMPLETE, StreamDecoder
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    ImagePart,
    Message,
    ResponseFormat,
    Start,
    StreamError,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    Tool,
    ToolCallArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from tests.translate import bedrock_reader, sdk
from tests.translate.fixtures import load_bytes, load_json

CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER = Tool(
    "get_weather",
    "Current weather of a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

_MODEL = get_session().get_service_model("bedrock-runtime")


def assert_valid_request(body: dict[str, Any], model_id: str = CLAUDE) -> None:
    """botocore's validator judges the body as the Converse input it would send."""
    shape = _MODEL.operation_model("Converse").input_shape
    report = ParamValidator().validate({"modelId": model_id, **body}, shape)
    assert not report.has_errors(), report.generate_report()


def botocore_response(body: dict[str, Any]) -> dict[str, Any]:
    """What boto3's ``converse()`` would return for this body."""
    shape = _MODEL.operation_model("Converse").output_shape
    raw = {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = RestJSONParser().parse(raw, shape)
    return parsed


def stream_events(path: str) -> list[tuple[str, str]]:
    raw = json.loads(load_bytes(path))
    return [(event, json.dumps(payload)) for event, payload in raw]


def decode(events: list[tuple[str, str]]) -> list[StreamEvent]:
    decoder = StreamDecoder()
    out: list[StreamEvent] = []
    for event, data in events:
        out.extend(decoder.feed(event, data))
    return out + decoder.close()


def user(*parts: Any) -> Message:
    return Message("user", list(parts))


# -- requests -------------------------------------------------------------------------------


def test_request_reads_the_golden_request() -> None:
    req = bedrock_reader.request_to_canonical(load_json("bedrock/request_tools.json"))
    assert req.system == ["You are a radio assistant. Answer in one sentence."]
    assert req.dropped == {"cachePoint"}
    first, call, result = req.messages
    assert first.parts[1] == ImagePart(media_type="image/png", data=PNG)
    assert call.parts == [
        ToolCallPart("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", '{"sign":"WZPZ"}')
    ]
    assert isinstance(result.parts[0], ToolResultPart)
    assert result.parts[0].call_id == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert json.loads(result.parts[0].content[0].text) == {  # type: ignore[union-attr]
        "song": "Elemental Hotel",
        "artist": "8 Storey Hike",
    }
    assert [t.name for t in req.tools] == ["top_song"]
    assert req.tools[0].parameters["required"] == ["sign"]
    assert req.tool_choice == ToolChoice("auto")
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k) == (512, 0.5, 0.9, 200)
    assert req.stop == ["\n\nHuman:"]
    assert req.extra == {}


def test_same_protocol_round_trip_is_valid_converse() -> None:
    body = load_json("bedrock/request_tools.json")
    out = bedrock_converse.request_from_canonical(bedrock_reader.request_to_canonical(body), CLAUDE)
    assert_valid_request(out)
    assert "modelId" not in out and "model" not in out  # the model is in the URL
    assert out["messages"][:2] == body["messages"][:2]
    assert out["system"] == body["system"][:1]  # the cache point was dropped and reported
    assert out["inferenceConfig"] == body["inferenceConfig"]
    assert out["toolConfig"] == body["toolConfig"]
    assert out["additionalModelRequestFields"] == {"top_k": 200}
    result = out["messages"][2]["content"][0]["toolResult"]
    assert json.loads(result["content"][0]["text"])["song"] == "Elemental Hotel"


def test_other_model_fields_pass_through_to_bedrock_only() -> None:
    body = load_json("bedrock/request_tools.json")
    body["additionalModelRequestFields"]["anthropic_beta"] = ["context-1m-2025-08-07"]
    body["guardrailConfig"] = {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
    req = bedrock_reader.request_to_canonical(body)
    out = bedrock_converse.request_from_canonical(req, CLAUDE)
    assert_valid_request(out)
    assert out["additionalModelRequestFields"] == {
        "top_k": 200,
        "anthropic_beta": ["context-1m-2025-08-07"],
    }
    assert out["guardrailConfig"] == body["guardrailConfig"]
    with pytest.raises(UnsupportedFeature, match="guardrailConfig"):
        openai_chat.request_from_canonical(req, "gpt-4o")


def test_request_from_another_protocol() -> None:
    req = ChatRequest(
        model="client-model",
        system=["Be brief.", "Use metric units."],
        messages=[
            user(TextPart("Weather in Oslo?"), ImagePart(media_type="image/jpeg", data=PNG)),
            Message(
                "assistant",
                [TextPart(""), ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}')],
            ),
            user(
                TextPart("and now?"),
                ToolResultPart("call_1", [TextPart("12 C, rain")], is_error=True),
            ),
        ],
        tools=[WEATHER],
        tool_choice=ToolChoice("required"),
        max_tokens=300,
        temperature=1.7,
        top_p=0.8,
        stop=["END"],
        seed=7,
        user="u-1",
        source="openai",
    )
    out = bedrock_converse.request_from_canonical(req, NOVA)
    assert_valid_request(out, NOVA)
    assert out["system"] == [{"text": "Be brief."}, {"text": "Use metric units."}]
    image = out["messages"][0]["content"][1]
    assert image == {"image": {"format": "jpeg", "source": {"bytes": PNG}}}
    assert out["messages"][1]["content"] == [  # the blank text block is not sent
        {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}}
    ]
    tool_result, text = out["messages"][2]["content"]  # results first, as Claude wants
    assert tool_result == {
        "toolResult": {
            "toolUseId": "call_1",
            "content": [{"text": "12 C, rain"}],
            "status": "error",
        }
    }
    assert text == {"text": "and now?"}
    assert out["inferenceConfig"] == {
        "maxTokens": 300,
        "temperature": 1.0,  # clamped to Bedrock's 0..1
        "topP": 0.8,
        "stopSequences": ["END"],
    }
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather of a city.",
                    "inputSchema": {"json": WEATHER.parameters},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    assert req.dropped == {"seed", "user"}
    assert "additionalModelRequestFields" not in out


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        (None, None),
        (ToolChoice("auto"), {"auto": {}}),
        (ToolChoice("required"), {"any": {}}),
        (ToolChoice("tool", "get_weather"), {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: ToolChoice | None, want: dict[str, Any] | None) -> None:
    req = ChatRequest(
        model="x", messages=[user(TextPart("hi"))], tools=[WEATHER], tool_choice=choice
    )
    out = bedrock_converse.request_from_canonical(req, NOVA)
    assert_valid_request(out, NOVA)
    assert out["toolConfig"].get("toolChoice") == want


def test_tool_choice_none_withholds_the_tools() -> None:
    req = ChatRequest(
        model="x", messages=[user(TextPart("hi"))], tools=[WEATHER], tool_choice=ToolChoice("none")
    )
    assert "toolConfig" not in bedrock_converse.request_from_canonical(req, NOVA)


def test_tool_ids_are_made_to_fit_bedrocks_pattern() -> None:
    long_id = "fc_" + "x" * 80
    req = ChatRequest(
        model="x",
        messages=[
            user(TextPart("hi")),
            Message(
                "assistant",
                [
                    ToolCallPart("call/1 2", "get_weather", "{}"),
                    ToolCallPart(long_id, "get_weather", ""),
                ],
            ),
            user(ToolResultPart("call/1 2", [TextPart("a")]), ToolResultPart(long_id, [])),
        ],
        tools=[WEATHER],
    )
    out = bedrock_converse.request_from_canonical(req, NOVA)
    assert_valid_request(out, NOVA)
    calls = [b["toolUse"]["toolUseId"] for b in out["messages"][1]["content"]]
    results = [b["toolResult"]["toolUseId"] for b in out["messages"][2]["content"]]
    assert calls == results and calls[0] == "call_1_2" and len(calls[1]) <= 64


@pytest.mark.parametrize(
    ("req", "match"),
    [
        (ChatRequest(model="x", messages=[user(ImagePart(url="https://x/a.png"))]), "URL"),
        (ChatRequest(model="x", messages=[user(ImagePart("image/tiff", PNG))]), "tiff"),
        (ChatRequest(model="x", messages=[user(TextPart("hi"))], n=2), "'n'"),
        (
            ChatRequest(
                model="x",
                messages=[
                    Message("assistant", [ToolCallPart("c1", "get_weather", "{}")]),
                    user(ToolResultPart("c1", [TextPart("sunny")])),
                ],
            ),
            "no tools offered",
        ),
        (
            ChatRequest(
                model="x",
                messages=[user(TextPart("hi"))],
                extra={"logit_bias": {}},
                source="openai",
            ),
            "logit_bias",
        ),
    ],
)
def test_what_converse_cannot_take_is_refused(req: ChatRequest, match: str) -> None:
    with pytest.raises(UnsupportedFeature, match=match):
        bedrock_converse.request_from_canonical(req, NOVA)


def test_broken_tool_arguments_in_the_history_are_a_bad_request() -> None:
    req = ChatRequest(
        model="x",
        messages=[Message("assistant", [ToolCallPart("c1", "get_weather", "{oops")])],
        tools=[WEATHER],
    )
    with pytest.raises(BadRequest, match="c1"):
        bedrock_converse.request_from_canonical(req, NOVA)


def test_thinking_and_top_k_reach_claude_only() -> None:
    def request(**kwargs: Any) -> ChatRequest:
        return ChatRequest(model="x", messages=[user(TextPart("hi"))], source="openai", **kwargs)

    out = bedrock_converse.request_from_canonical(
        request(reasoning_effort="high", max_tokens=30000, top_k=5), CLAUDE
    )
    assert_valid_request(out)
    assert out["additionalModelRequestFields"] == {
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 24576},
    }
    out = bedrock_converse.request_from_canonical(request(reasoning_effort="high"), CLAUDE)
    assert out["inferenceConfig"] == {"maxTokens": 4096}  # the budget must stay below it
    assert out["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4095
    off = bedrock_converse.request_from_canonical(request(reasoning_effort="none"), CLAUDE)
    assert "additionalModelRequestFields" not in off
    # Under Claude's 1,024-token minimum (max_tokens leaves no room) thinking stays off.
    small = bedrock_converse.request_from_canonical(
        request(reasoning_effort="low", max_tokens=900), CLAUDE
    )
    assert "additionalModelRequestFields" not in small
    req = request(reasoning_effort="high", top_k=5, show_thinking=True)
    out = bedrock_converse.request_from_canonical(req, NOVA)
    assert "additionalModelRequestFields" not in out and "inferenceConfig" not in out
    assert req.dropped == {"reasoning_effort", "top_k", "show_thinking"}


def test_signed_reasoning_goes_back_and_unsigned_stays() -> None:
    req = ChatRequest(
        model="x",
        messages=[
            user(TextPart("hi")),
            Message(
                "assistant",
                [
                    ThinkingPart("plan", "sig-1"),
                    ThinkingPart("opaque", redacted=True),
                    ThinkingPart("unsigned"),
                    TextPart("hello"),
                ],
            ),
        ],
    )
    out = bedrock_converse.request_from_canonical(req, CLAUDE)
    assert_valid_request(out)
    assert out["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "plan", "signature": "sig-1"}}},
        {"reasoningContent": {"redactedContent": "opaque"}},
        {"text": "hello"},
    ]


def test_json_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = ChatRequest(
        model="x",
        messages=[user(TextPart("hi"))],
        response_format=ResponseFormat("json_schema", schema, "answer"),
    )
    out = bedrock_converse.request_from_canonical(req, CLAUDE)
    assert_valid_request(out)
    fmt = out["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == schema
    back = bedrock_reader.request_to_canonical(out)
    assert back.response_format == ResponseFormat("json_schema", schema, "answer")
    req.response_format = ResponseFormat("json_object")
    out = bedrock_converse.request_from_canonical(req, CLAUDE)
    assert out["system"] == [{"text": JSON_INSTRUCTION}]


# -- responses ------------------------------------------------------------------------------


def test_response_text_with_cache_tokens() -> None:
    resp = bedrock_converse.response_to_canonical(load_json("bedrock/response_text.json"))
    assert resp.parts == [
        TextPart("The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.")
    ]
    assert resp.finish_reason == "stop"
    # prompt_tokens counts the cache reads and writes (canonical semantics)
    assert resp.usage == Usage(1556, 16, 1572, cached_prompt_tokens=1024, cache_write_tokens=510)
    chat = sdk.openai_chat_completion(openai_chat.response_from_canonical(resp, "route"))
    assert chat.usage.prompt_tokens == 1556
    assert chat.usage.prompt_tokens_details.cached_tokens == 1024


def test_response_tool_use() -> None:
    resp = bedrock_converse.response_to_canonical(load_json("bedrock/response_tool_use.json"))
    assert resp.finish_reason == "tool_calls"
    assert resp.parts == [
        TextPart("I'll look up the top song on WZPZ."),
        ToolCallPart("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", '{"sign":"WZPZ"}'),
    ]
    assert resp.usage == Usage(375, 57, 432)


def test_response_reasoning() -> None:
    resp = bedrock_converse.response_to_canonical(load_json("bedrock/response_reasoning.json"))
    thinking, redacted, text = resp.parts
    assert (
        isinstance(thinking, ThinkingPart)
        and thinking.signature == "EqoBCkgIARABGAIiQL2Tz6mF1b1yLq8uq1n3Y0c8l2Xw"
    )
    assert thinking.text.endswith("= 12231.")
    assert redacted == ThinkingPart("RXJyb3IgcmVkYWN0ZWQgZm9yIHNhZmV0eQ==", redacted=True)
    assert text == TextPart("27 \u00d7 453 = 12,231.")


@pytest.mark.parametrize(
    ("stop_reason", "want"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_tool_use", "error"),
        ("some_future_reason", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, want: str) -> None:
    body = load_json("bedrock/response_text.json")
    body["stopReason"] = stop_reason
    assert bedrock_converse.response_to_canonical(body).finish_reason == want


@pytest.mark.parametrize(
    "path",
    [
        "bedrock/response_text.json",
        "bedrock/response_tool_use.json",
        "bedrock/response_reasoning.json",
    ],
)
def test_response_round_trip_is_read_by_botocore(path: str) -> None:
    body = load_json(path)
    resp = bedrock_converse.response_to_canonical(body)
    out = bedrock_reader.response_from_canonical(resp, "route")
    assert out["output"] == body["output"]
    assert out["stopReason"] == body["stopReason"]
    assert out["usage"] == body["usage"]
    parsed = botocore_response(out)
    assert parsed["stopReason"] == body["stopReason"]
    assert parsed["usage"]["totalTokens"] == body["usage"]["totalTokens"]
    again = bedrock_converse.response_to_canonical(out)
    assert (again.parts, again.usage) == (resp.parts, resp.usage)


def test_stop_sequence_survives_the_round_trip() -> None:
    resp = ChatResponse("r", "m", [TextPart("x")], "stop", Usage(1, 1, 2), stop_sequence="END")
    out = bedrock_reader.response_from_canonical(resp, "route")
    assert out["stopReason"] == "stop_sequence"


# -- streams --------------------------------------------------------------------------------


def test_stream_decoder_tool_use_with_partial_json_and_usage() -> None:
    events = decode(stream_events("bedrock/stream_tool_use.json"))
    assert isinstance(events[0], Start)
    assert events[1:] == [
        ThinkingDelta("The user wants WZPZ's top song; "),
        ThinkingDelta("top_song gives it."),
        ThinkingDelta("", signature="EqoBCkgIARABGAIiQL2Tz6mF1b1y"),
        TextDelta("I'll look up "),
        TextDelta("the top song on WZPZ."),
        ToolCallStart(0, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song"),
        ToolCallArgsDelta(0, '{"sign": '),
        ToolCallArgsDelta(0, '"WZPZ"}'),
        ToolCallStart(1, "tooluse_Qx3e1nPSTqeLb9cFGlvz2A", "top_song"),
        ToolCallArgsDelta(1, '{"sign": "WKRP"}'),
        Usage(1399, 98, 1497, cached_prompt_tokens=1024),  # the usage first, then the stop
        Finish("tool_calls"),
    ]


def test_the_stop_waits_for_the_usage() -> None:
    decoder = StreamDecoder()
    decoder.feed("messageStart", '{"role": "assistant"}')
    assert decoder.feed("messageStop", '{"stopReason": "end_turn"}') == []
    usage = json.dumps(
        {
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
            "metrics": {"latencyMs": 1},
        }
    )
    assert decoder.feed("metadata", usage) == [Usage(3, 1, 4), Finish("stop")]
    assert decoder.close() == []
    # A stream cut after messageStop is a complete answer whose usage is unknown.
    cut = StreamDecoder()
    cut.feed("messageStop", '{"stopReason": "max_tokens"}')
    assert cut.close() == [Finish("length")]


@pytest.mark.parametrize(
    "exception",
    [
        "throttlingException",
        "modelStreamErrorException",
        "validationException",
        "internalServerException",
        "serviceUnavailableException",
    ],
)
def test_stream_exceptions_become_stream_errors(exception: str) -> None:
    decoder = StreamDecoder()
    assert decoder.feed(exception, '{"message": "Too many requests."}') == [
        StreamError("Too many requests.")
    ]
    assert decoder.close() == []


def test_a_stream_that_stops_early_is_incomplete() -> None:
    events = decode(stream_events("bedrock/stream_exception.json"))
    assert events[1] == TextDelta("The most popular")
    assert isinstance(events[2], StreamError) and events[2].message.startswith("Model stream error")
    truncated = decode(stream_events("bedrock/stream_tool_use.json")[:5])
    assert truncated[-1] == StreamError(INCOMPLETE)


def _header(name: str, value: str) -> bytes:
    raw = value.encode()
    return bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw


def _frame(event: str, payload: str) -> bytes:
    """One AWS event-stream message as Bedrock sends it (prelude, headers, payload, CRCs)."""
    headers = _header(":event-type", event) + _header(":content-type", "application/json")
    headers += _header(":message-type", "event")
    body = payload.encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def test_the_chain_to_an_openai_chat_client_carries_the_usage() -> None:
    """Event-stream bytes -> botocore's unframing -> decoder -> OpenAI chat encoder -> SDK."""
    wire = b"".join(_frame(e, d) for e, d in stream_events("bedrock/stream_tool_use.json"))
    buffer = EventStreamBuffer()
    decoder = StreamDecoder()
    encoder = openai_chat.StreamEncoder("client-model", include_usage=True)
    out = b""
    for piece in (wire[i : i + 50] for i in range(0, len(wire), 50)):  # arbitrary chunking
        buffer.add_data(piece)
        for message in buffer:
            event = message.headers[":event-type"]
            for ev in decoder.feed(event, message.payload.decode()):
                out += encoder.feed(ev)
    for ev in decoder.close():
        out += encoder.feed(ev)
    out += encoder.close()
    chunks = sdk.openai_chat_chunks(out)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 1399
    assert chunks[-1].usage.completion_tokens == 98
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1024
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    final = sdk.openai_chat_stream(out)
    message = final.choices[0].message
    assert message.content == "I'll look up the top song on WZPZ."
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls]
    assert calls == [
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", {"sign": "WZPZ"}),
        ("tooluse_Qx3e1nPSTqeLb9cFGlvz2A", "top_song", {"sign": "WKRP"}),
    ]
    assert final.usage.total_tokens == 1497


def test_error_event_is_the_exception_payload() -> None:
    assert json.loads(bedrock_converse.error_event("retry")) == {"message": "retry"}
