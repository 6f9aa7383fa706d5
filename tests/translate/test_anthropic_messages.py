"""Anthropic messages <-> canonical, on golden captures and through the official SDK."""

from __future__ import annotations

import json

import anthropic
import pytest

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate import anthropic_messages
from gateway.translate.anthropic_messages_stream import INCOMPLETE
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    ImagePart,
    Message,
    ResponseFormat,
    Start,
    StreamError,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
)
from tests.translate import sdk
from tests.translate.fixtures import decode_stream, encode_stream, load_bytes, load_json


def test_request_reads_system_blocks_thinking_tools_and_results() -> None:
    req = anthropic_messages.request_to_canonical(load_json("anthropic/request_tools.json"))
    assert req.system == ["You are a helpful travel assistant.", "Answer in one short paragraph."]
    assert isinstance(req.messages[0].parts[0], ImagePart)
    thinking, _, call = req.messages[1].parts
    assert isinstance(thinking, ThinkingPart) and thinking.signature
    assert isinstance(call, ToolCallPart)
    assert json.loads(call.arguments) == {"location": "Paris, France", "unit": "celsius"}
    result = req.messages[2].parts[0]
    assert result == ToolResultPart(call.id, [TextPart("18 degrees, light rain")])
    assert req.thinking_budget == 1024 and req.parallel_tool_calls is False
    assert req.user == "user-1234" and req.stop == ["\n\nHuman:"]
    assert req.extra == {}


def test_same_protocol_round_trip_keeps_thinking_and_signature_untouched() -> None:
    body = load_json("anthropic/request_tools.json")
    out = anthropic_messages.request_from_canonical(
        anthropic_messages.request_to_canonical(body), "claude-sonnet-4-5"
    )
    assert out["messages"][1]["content"] == body["messages"][1]["content"]
    assert out["messages"][2]["content"][0]["tool_use_id"] == "toolu_01A09q90qw90lq917835lq9"
    assert out["tools"] == body["tools"]
    assert out["tool_choice"] == body["tool_choice"]
    assert out["thinking"] == body["thinking"]
    assert out["max_tokens"] == 2048 and out["metadata"] == body["metadata"]


def _req(**kw: object) -> ChatRequest:
    return ChatRequest(model="x", messages=[Message("user", [TextPart("hi")])], **kw)  # type: ignore[arg-type]


def test_defaults_and_choices_for_what_anthropic_lacks() -> None:
    out = anthropic_messages.request_from_canonical(_req(temperature=1.7), "claude")
    assert out["max_tokens"] == anthropic_messages.DEFAULT_MAX_TOKENS
    assert out["temperature"] == 1.0
    out = anthropic_messages.request_from_canonical(
        _req(response_format=ResponseFormat("json_object"), system=["Be brief."]), "claude"
    )
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": anthropic_messages.JSON_INSTRUCTION},
    ]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = anthropic_messages.request_from_canonical(
        _req(response_format=ResponseFormat("json_schema", schema)), "claude"
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_reasoning_effort_becomes_a_budget_below_max_tokens() -> None:
    out = anthropic_messages.request_from_canonical(_req(reasoning_effort="high"), "claude")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 4095}
    out = anthropic_messages.request_from_canonical(
        _req(reasoning_effort="low", max_tokens=8000), "claude"
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    out = anthropic_messages.request_from_canonical(
        _req(reasoning_effort="high", max_tokens=900), "claude"
    )
    assert "thinking" not in out


def test_several_choices_are_refused() -> None:
    with pytest.raises(UnsupportedFeature, match="'n'"):
        anthropic_messages.request_from_canonical(_req(n=2), "claude")


def test_messages_are_merged_tool_results_first_and_ids_made_safe() -> None:
    req = ChatRequest(
        model="x",
        messages=[
            Message("assistant", [ToolCallPart("call.1/x", "f", '{"a": 1}')]),
            Message("user", [TextPart("and")]),
            Message("user", [ToolResultPart("call.1/x", [TextPart("ok")]), TextPart("")]),
        ],
    )
    out = anthropic_messages.request_from_canonical(req, "claude")
    assert out["messages"][0]["content"][0]["id"] == "call_1_x"
    assert out["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1_x", "content": "ok"},
            {"type": "text", "text": "and"},
        ],
    }


def test_invalid_history_arguments_and_missing_max_tokens_are_bad_requests() -> None:
    req = ChatRequest(model="x", messages=[Message("assistant", [ToolCallPart("c", "f", "{nope")])])
    with pytest.raises(BadRequest, match="'c'"):
        anthropic_messages.request_from_canonical(req, "claude")
    with pytest.raises(BadRequest) as info:
        anthropic_messages.request_to_canonical({"messages": []})
    assert info.value.param == "max_tokens"


def test_server_tools_are_refused() -> None:
    body = load_json("anthropic/request_tools.json")
    body["tools"].append({"type": "web_search_20250305", "name": "web_search"})
    with pytest.raises(UnsupportedFeature, match="web_search"):
        anthropic_messages.request_to_canonical(body)


def test_response_usage_counts_cache_reads_in_the_prompt() -> None:
    resp = anthropic_messages.response_to_canonical(load_json("anthropic/response_text.json"))
    assert resp.usage == Usage(1117, 46, 1163, cached_prompt_tokens=1024)
    out = sdk.anthropic_message(anthropic_messages.response_from_canonical(resp, "route"))
    assert out.usage.input_tokens == 93 and out.usage.cache_read_input_tokens == 1024
    assert out.stop_reason == "end_turn" and out.model == "route"


def test_response_thinking_and_redacted_survive_a_round_trip() -> None:
    body = load_json("anthropic/response_thinking.json")
    resp = anthropic_messages.response_to_canonical(body)
    assert resp.finish_reason == "length"
    out = anthropic_messages.response_from_canonical(resp, body["model"])
    assert out["content"] == body["content"] and out["stop_reason"] == "max_tokens"
    assert out["usage"]["cache_creation_input_tokens"] == 20 and out["usage"]["input_tokens"] == 50


def test_stop_sequence_and_tool_use_reasons() -> None:
    resp = ChatResponse("i", "m", [TextPart("x")], "stop", stop_sequence="END")
    out = sdk.anthropic_message(anthropic_messages.response_from_canonical(resp, "m"))
    assert out.stop_reason == "stop_sequence" and out.stop_sequence == "END"
    body = load_json("anthropic/response_tool_use.json")
    resp = anthropic_messages.response_to_canonical(body)
    assert resp.finish_reason == "tool_calls"
    out = sdk.anthropic_message(anthropic_messages.response_from_canonical(resp, "m"))
    assert out.content[1].input == {"location": "San Francisco, CA", "unit": "celsius"}


def test_stream_decoder_tool_use_and_usage() -> None:
    events = decode_stream("anthropic", load_bytes("anthropic/stream_tool_use.sse"))
    assert events[0] == Start("msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929")
    assert ToolCallStart(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather") in events
    args = "".join(e.partial_json for e in events if isinstance(e, ToolCallArgsDelta))
    assert json.loads(args) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert events[-2:] == [Finish("tool_calls"), Usage(728, 89, 817, cached_prompt_tokens=256)]


def test_stream_decoder_thinking_signature_and_ping() -> None:
    events = decode_stream("anthropic", load_bytes("anthropic/stream_thinking.sse"))
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert thinking[-1].signature and thinking[-1].signature.startswith("EqQB")
    assert "".join(t.text for t in thinking).startswith("Let me solve")


@pytest.mark.parametrize(
    "path",
    ["anthropic/stream_text.sse", "anthropic/stream_tool_use.sse", "anthropic/stream_thinking.sse"],
)
def test_stream_encoder_rebuilds_the_same_message_in_the_sdk(path: str) -> None:
    raw = load_bytes(path)
    want = sdk.anthropic_stream(raw)
    out = encode_stream("anthropic", decode_stream("anthropic", raw))
    sdk.anthropic_events(out)  # every event is a valid RawMessageStreamEvent
    got = sdk.anthropic_stream(out)
    assert [b.model_dump() for b in got.content] == [b.model_dump() for b in want.content]
    assert got.stop_reason == want.stop_reason
    assert got.usage.output_tokens == want.usage.output_tokens
    assert got.usage.input_tokens == want.usage.input_tokens


def test_stream_encoder_stops_only_at_the_upstreams_end_with_the_latest_usage() -> None:
    encoder = anthropic_messages.StreamEncoder("m")
    encoder.feed(Start("msg_1", "x"))
    encoder.feed(TextDelta("hi"))
    assert encoder.feed(Finish("stop")) == b""
    assert encoder.feed(Usage(10, 1, 11)) == b""  # the gateway settles before message_stop
    assert encoder.feed(Usage(10, 2, 12)) == b""
    tail = encoder.close()
    assert b"message_delta" in tail and tail.endswith(b'{"type":"message_stop"}\n\n')
    assert b'"output_tokens":2' in tail


def test_stream_errors() -> None:
    decoder = anthropic_messages.StreamDecoder()
    error = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    assert decoder.feed("error", error) == [StreamError("Overloaded")]
    assert decoder.close() == [StreamError(INCOMPLETE)]
    encoder = anthropic_messages.StreamEncoder("m")
    raw = encoder.feed(Start("msg_1", "m")) + encoder.feed(TextDelta("par")) + encoder.close()
    with pytest.raises(anthropic.APIStatusError, match="ended before"):
        sdk.anthropic_stream(raw)
