"""OpenAI Responses API <-> canonical, checked by the official SDK's stream state."""

from __future__ import annotations

import json

import pytest

from gateway.errors import UnsupportedFeature
from gateway.translate import openai_responses
from gateway.translate.canonical import (
    ChatResponse,
    Finish,
    ImagePart,
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


def test_request_reads_input_items() -> None:
    req = openai_responses.request_to_canonical(load_json("openai/responses_request.json"))
    assert req.system == ["You are a concise assistant."]
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert isinstance(req.messages[0].parts[1], ImagePart)
    assert req.messages[0].parts[1].media_type == "image/jpeg"
    assert req.messages[1].parts == [
        ToolCallPart("call_12345xyz", "get_weather", '{"location":"Paris, France"}')
    ]
    result = req.messages[2].parts[0]
    assert isinstance(result, ToolResultPart) and result.call_id == "call_12345xyz"
    assert req.response_format is not None and req.response_format.type == "json_object"
    assert (req.max_tokens, req.temperature) == (300, 0.2)
    assert req.extra == {}


def test_stateful_features_are_refused() -> None:
    with pytest.raises(UnsupportedFeature, match="previous_response_id"):
        openai_responses.request_to_canonical({"input": "hi", "previous_response_id": "resp_1"})
    # A client-shaped tool (web search maps: see test_responses_tools).
    with pytest.raises(UnsupportedFeature, match="local_shell"):
        openai_responses.request_to_canonical({"input": "hi", "tools": [{"type": "local_shell"}]})


def test_round_trip_of_the_request() -> None:
    body = load_json("openai/responses_request.json")
    out = openai_responses.request_from_canonical(
        openai_responses.request_to_canonical(body), "gpt-4.1"
    )
    assert out["instructions"] == body["instructions"]
    assert out["input"][1] == body["input"][1] and out["input"][2] == body["input"][2]
    assert out["text"] == body["text"] and out["max_output_tokens"] == 300


def test_response_round_trip_validates_in_the_sdk() -> None:
    body = load_json("openai/responses_response.json")
    resp = openai_responses.response_to_canonical(body)
    assert resp.finish_reason == "tool_calls"
    assert resp.usage == Usage(328, 52, 380, cached_prompt_tokens=128)
    out = sdk.openai_response(openai_responses.response_from_canonical(resp, "route"))
    assert out.id == body["id"] and out.model == "route"
    assert [o.type for o in out.output] == ["function_call", "message"]
    assert out.output_text == "Let me check the weather in Paris."
    assert out.usage is not None and out.usage.input_tokens_details.cached_tokens == 128


def test_thinking_goes_out_as_a_reasoning_item_with_its_signature() -> None:
    resp = ChatResponse("abc", "m", [ThinkingPart("hmm", "sig=="), TextPart("ok")], "length")
    out = sdk.openai_response(openai_responses.response_from_canonical(resp, "m"))
    assert out.status == "incomplete"
    assert out.incomplete_details is not None
    assert out.incomplete_details.reason == "max_output_tokens"
    reasoning = out.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "sig=="
    back = openai_responses.request_to_canonical(
        {"input": [reasoning.model_dump(exclude_none=True), {"role": "user", "content": "go on"}]}
    )
    assert back.messages[0].parts == [ThinkingPart("hmm", "sig==")]


def test_stream_decoder() -> None:
    events = decode_stream("openai_responses", load_bytes("openai/responses_stream_tool_call.sse"))
    assert events[0] == Start("resp_68a1f2c3d4e5", "gpt-4.1-2025-04-14")
    assert events[1] == ToolCallStart(0, "call_pLm9Qr2sT4", "get_weather")
    args = "".join(e.partial_json for e in events if isinstance(e, ToolCallArgsDelta))
    assert json.loads(args) == {"location": "Paris, France"}
    assert events[-2:] == [Finish("tool_calls"), Usage(57, 18, 75)]


@pytest.mark.parametrize(
    "path", ["openai/responses_stream_text.sse", "openai/responses_stream_tool_call.sse"]
)
def test_stream_encoder_rebuilds_the_same_response_in_the_sdk(path: str) -> None:
    raw = load_bytes(path)
    want = sdk.openai_responses_stream(raw)
    got = sdk.openai_responses_stream(
        encode_stream("openai_responses", decode_stream("openai_responses", raw))
    )
    assert got.output_text == want.output_text
    assert [o.type for o in got.output] == [o.type for o in want.output]
    got_calls = [(o.call_id, o.name, o.arguments) for o in got.output if o.type == "function_call"]
    want_calls = [
        (o.call_id, o.name, o.arguments) for o in want.output if o.type == "function_call"
    ]
    assert got_calls == want_calls
    assert got.usage == want.usage and got.status == "completed"


def test_stream_encoder_reasoning_then_text_then_call() -> None:
    events = [
        Start("r9", "x"),
        ThinkingDelta("thinking..."),
        ThinkingDelta("", signature="enc"),
        TextDelta("Calling."),
        ToolCallStart(0, "call_1", "f"),
        ToolCallArgsDelta(0, '{"a":'),
        ToolCallArgsDelta(0, "1}"),
        Finish("tool_calls"),
        Usage(5, 7, 12, reasoning_tokens=3),
    ]
    raw = encode_stream("openai_responses", events)
    numbers = [data["sequence_number"] for _, data in sdk.sse_json(raw)]
    assert numbers == list(range(len(numbers)))
    final = sdk.openai_responses_stream(raw)
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].encrypted_content == "enc"
    assert final.output[0].summary[0].text == "thinking..."
    assert final.output[2].arguments == '{"a":1}'
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 3


def test_stream_failure_is_an_error_event_and_a_failed_response() -> None:
    encoder = openai_responses.StreamEncoder("m")
    raw = encoder.feed(Start("r", "m")) + encoder.feed(StreamError("boom"))
    kinds = [data["type"] for _, data in sdk.sse_json(raw)]
    assert kinds[-2:] == ["error", "response.failed"]
    assert encoder.close() == b""
    truncated = openai_responses.StreamEncoder("m")
    raw = truncated.feed(TextDelta("par")) + truncated.close()
    assert [d["type"] for _, d in sdk.sse_json(raw)][-1] == "response.failed"
