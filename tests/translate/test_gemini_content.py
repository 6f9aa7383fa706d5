"""Gemini generateContent <-> canonical, on golden captures and through google-genai."""

from __future__ import annotations

import json

import pytest
from google.genai import errors as genai_errors

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate import gemini_content
from gateway.translate.canonical import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
    ResponseFormat,
    Start,
    StreamError,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ToolCallArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from gateway.translate.gemini_content_stream import INCOMPLETE
from tests.translate import sdk
from tests.translate.fixtures import decode_stream, encode_stream, load_bytes, load_json


def test_request_reads_calls_and_matches_responses_by_name() -> None:
    req = gemini_content.request_to_canonical(load_json("gemini/request_tools.json"))
    assert req.system == ["You are a helpful travel assistant."]
    assert isinstance(req.messages[0].parts[1], ImagePart)
    calls = [p for p in req.messages[1].parts if isinstance(p, ToolCallPart)]
    assert [(c.id, c.name) for c in calls] == [
        ("call_1_0", "get_weather"),
        ("call_1_1", "get_time"),
    ]
    assert calls[0].signature and calls[1].signature is None
    results = [p for p in req.messages[2].parts if isinstance(p, ToolResultPart)]
    assert [r.call_id for r in results] == ["call_1_0", "call_1_1"]
    assert json.loads(results[0].content[0].text) == {"temperature": 18, "conditions": "light rain"}  # type: ignore[union-attr]
    assert results[1].content == [TextPart("14:05")]
    assert req.messages[2].parts[-1] == TextPart("Thanks! Should I take an umbrella?")
    weather, time = req.tools
    assert weather.parameters["properties"]["unit"] == {
        "type": ["string", "null"],
        "enum": ["celsius", "fahrenheit"],
    }
    assert time.parameters == {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    }
    assert req.tool_choice == ToolChoice("auto")
    assert (req.max_tokens, req.top_k, req.thinking_budget) == (512, 40, 2048)
    assert req.extra == {}


def test_same_protocol_round_trip() -> None:
    body = load_json("gemini/request_tools.json")
    out = gemini_content.request_from_canonical(gemini_content.request_to_canonical(body), "g")
    assert out["contents"][1]["parts"][0] == body["contents"][1]["parts"][0]
    assert out["contents"][2]["parts"][:2] == body["contents"][2]["parts"]
    assert out["systemInstruction"] == body["systemInstruction"]
    config = out["generationConfig"]
    assert config["maxOutputTokens"] == 512 and config["topK"] == 40
    assert config["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}


def test_json_output_request_reads_the_schema() -> None:
    req = gemini_content.request_to_canonical(load_json("gemini/request_json.json"))
    assert req.response_format is not None and req.response_format.type == "json_schema"
    assert req.response_format.schema is not None
    assert req.response_format.schema["items"]["properties"]["recipeName"] == {"type": "string"}
    out = gemini_content.request_from_canonical(req, "g")["generationConfig"]
    assert out["responseMimeType"] == "application/json"
    assert out["responseSchema"]["items"]["properties"]["ingredients"]["type"] == "ARRAY"


def test_tool_results_get_their_name_from_the_history() -> None:
    req = ChatRequest(
        model="x",
        messages=[
            Message("user", [TextPart("weather?")]),
            Message("assistant", [ToolCallPart("call_abc", "get_weather", '{"city":"Oslo"}')]),
            Message("user", [ToolResultPart("call_abc", [TextPart("sunny")], is_error=True)]),
        ],
        tools=[],
        tool_choice=ToolChoice("tool", "get_weather"),
    )
    out = gemini_content.request_from_canonical(req, "g")
    call = out["contents"][1]["parts"][0]
    assert call["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    assert call["thoughtSignature"] == gemini_content.SKIP_SIGNATURE
    assert out["contents"][2]["parts"][0] == {
        "functionResponse": {"name": "get_weather", "response": {"error": "sunny"}}
    }
    req.messages[2].parts[0] = ToolResultPart("call_zzz", [TextPart("x")])
    with pytest.raises(BadRequest, match="call_zzz"):
        gemini_content.request_from_canonical(req, "g")


def test_tool_choice_and_json_config() -> None:
    from gateway.translate.canonical import Tool

    tool = Tool("f", "does f", {"type": "object", "properties": {"a": {"type": "string"}}})
    req = ChatRequest(model="x", messages=[Message("user", [TextPart("hi")])], tools=[tool])
    for choice, want in [
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ]:
        req.tool_choice = choice
        out = gemini_content.request_from_canonical(req, "g")
        assert out["toolConfig"] == {"functionCallingConfig": want}
    req.response_format = ResponseFormat("json_object")
    config = gemini_content.request_from_canonical(req, "g")["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    "req",
    [
        ChatRequest(model="x", messages=[Message("user", [TextPart("hi")])], n=2),
        ChatRequest(model="x", messages=[Message("user", [ImagePart(url="https://x/a.png")])]),
    ],
)
def test_what_gemini_cannot_take_is_refused(req: ChatRequest) -> None:
    with pytest.raises(UnsupportedFeature):
        gemini_content.request_from_canonical(req, "g")


def test_built_in_tools_and_audio_are_refused_on_read() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "tools": [{"googleSearch": {}}],
    }
    with pytest.raises(UnsupportedFeature, match="googleSearch"):
        gemini_content.request_to_canonical(body)
    audio = {"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}}
    with pytest.raises(UnsupportedFeature, match="audio/wav"):
        gemini_content.request_to_canonical({"contents": [{"role": "user", "parts": [audio]}]})


def test_response_function_calls_get_stable_ids_and_tool_calls_reason() -> None:
    body = load_json("gemini/response_function_call.json")
    resp = gemini_content.response_to_canonical(body)
    again = gemini_content.response_to_canonical(body)
    assert resp.finish_reason == "tool_calls"
    ids = [p.id for p in resp.parts if isinstance(p, ToolCallPart)]
    assert ids == ["call_xPrTaOmBDoC_z7IPq6Lz0Ag_0", "call_xPrTaOmBDoC_z7IPq6Lz0Ag_1"]
    assert ids == [p.id for p in again.parts if isinstance(p, ToolCallPart)]
    assert resp.usage == Usage(82, 58, 140, reasoning_tokens=41)
    out = sdk.gemini_response(gemini_content.response_from_canonical(resp, "route"))
    assert [c.name for c in out.function_calls or []] == ["get_weather", "get_time"]
    assert out.usage_metadata is not None
    assert out.usage_metadata.thoughts_token_count == 41
    assert out.usage_metadata.candidates_token_count == 17


def test_response_text_cached_tokens_and_safety() -> None:
    resp = gemini_content.response_to_canonical(load_json("gemini/response_text.json"))
    assert resp.usage is not None and resp.usage.cached_prompt_tokens == 1024
    out = sdk.gemini_response(gemini_content.response_from_canonical(resp, "route"))
    assert out.text and out.text.startswith("Yes, take an umbrella")
    assert out.usage_metadata and out.usage_metadata.cached_content_token_count == 1024
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "g"}
    assert gemini_content.response_to_canonical(blocked).finish_reason == "content_filter"
    odd = load_json("gemini/response_text.json")
    odd["candidates"][0]["finishReason"] = "MALFORMED_FUNCTION_CALL"
    assert gemini_content.response_to_canonical(odd).finish_reason == "error"


def test_stream_decoder_function_calls_and_usage() -> None:
    events = decode_stream("gemini", load_bytes("gemini/stream_function_call.sse"))
    assert events[0] == Start("gkzTaLXcH6Sfz7IPtNvYkAk", "gemini-2.5-flash")
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [
        ("call_gkzTaLXcH6Sfz7IPtNvYkAk_0", "get_weather"),
        ("call_gkzTaLXcH6Sfz7IPtNvYkAk_1", "get_time"),
    ]
    assert starts[0].signature
    assert ToolCallArgsDelta(1, '{"timezone":"Europe/Paris"}') in events
    assert events[-2:] == [
        Finish("tool_calls"),
        Usage(70, 61, 131, cached_prompt_tokens=32, reasoning_tokens=36),
    ]


def test_stream_decoder_thoughts() -> None:
    events = decode_stream("gemini", load_bytes("gemini/stream_thinking.sse"))
    assert isinstance(events[1], ThinkingDelta) and events[1].text.startswith("**Calculating")
    assert TextDelta("27 * 453 = 12,231") in events


@pytest.mark.parametrize(
    "path",
    ["gemini/stream_text.sse", "gemini/stream_function_call.sse", "gemini/stream_thinking.sse"],
)
def test_stream_encoder_is_read_by_google_genai_like_the_capture(path: str) -> None:
    raw = load_bytes(path)
    want = sdk.gemini_stream(raw)
    got = sdk.gemini_stream(encode_stream("gemini", decode_stream("gemini", raw)))
    text = "".join(c.text or "" for c in got)
    assert text == "".join(c.text or "" for c in want)
    calls = [(f.name, f.args) for c in got for f in c.function_calls or []]
    assert calls == [(f.name, f.args) for c in want for f in c.function_calls or []]
    assert got[-1].candidates and got[-1].candidates[0].finish_reason == "STOP"
    assert got[-1].usage_metadata == want[-1].usage_metadata.model_copy(
        update={"prompt_tokens_details": None}
    )


def test_stream_encoder_holds_a_call_until_its_arguments_are_complete() -> None:
    encoder = gemini_content.StreamEncoder("g")
    assert encoder.feed(Start("r1", "x")) == b""
    assert encoder.feed(ToolCallStart(0, "call_1", "f")) == b""
    assert encoder.feed(ToolCallArgsDelta(0, '{"a":')) == b""
    assert encoder.feed(ToolCallArgsDelta(0, "1}")) == b""
    out = encoder.feed(TextDelta("after"))
    chunks = [json.loads(line[6:]) for line in out.split(b"\r\n\r\n") if line]
    assert chunks[0]["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "call_1", "name": "f", "args": {"a": 1}}}
    ]
    assert chunks[1]["candidates"][0]["content"]["parts"] == [{"text": "after"}]


def test_stream_errors() -> None:
    decoder = gemini_content.StreamDecoder()
    err = '{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    assert decoder.feed("", err) == [StreamError("The model is overloaded.")]
    assert decoder.close() == [StreamError(INCOMPLETE)]
    encoder = gemini_content.StreamEncoder("g")
    raw = encoder.feed(Start("r", "g")) + encoder.feed(TextDelta("par")) + encoder.close()
    with pytest.raises(genai_errors.APIError, match="ended before"):
        sdk.gemini_stream(raw)
