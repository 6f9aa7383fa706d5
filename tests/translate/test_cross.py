"""Every client protocol against every provider protocol: requests, responses and streams.

Each case converts a golden capture X -> canonical -> Y, reads Y back with Y's own decoder
(and, for answers, Y's official SDK) and checks the meaning survived: texts, images,
tool calls and results, tool definitions and choice, sampling fields, finish reasons
and usage.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import UnsupportedFeature
from gateway.translate import CONVERTERS, StreamTranslator
from gateway.translate.anthropic_messages import JSON_INSTRUCTION
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    ImagePart,
    Message,
    TextDelta,
    TextPart,
    Tool,
    ToolCallArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from tests.translate import sdk
from tests.translate.fixtures import (
    REQUESTS,
    RESPONSES,
    STREAMS,
    decode_stream,
    load_bytes,
    load_json,
)

PROTOCOLS = list(CONVERTERS)


def request_meaning(req: ChatRequest) -> dict[str, Any]:
    """What must survive any translation of a request."""
    names: dict[str, str] = {}
    turns: list[tuple[str, list[Any]]] = []
    for m in req.messages:
        items: list[Any] = []
        for p in m.parts:
            if isinstance(p, TextPart) and p.text:
                items.append(("text", p.text))
            elif isinstance(p, ImagePart):
                items.append(("image", p.media_type, p.data, p.url))
            elif isinstance(p, ToolCallPart):
                names[p.id] = p.name
                items.append(("call", p.name, json.loads(p.arguments or "{}")))
            elif isinstance(p, ToolResultPart):
                text = "".join(c.text for c in p.content if isinstance(c, TextPart))
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                items.append(("result", names.get(p.call_id, "?"), value))
        if not items:
            continue
        if turns and turns[-1][0] == m.role:
            turns[-1][1].extend(items)
        else:
            turns.append((m.role, items))
    for role, items in turns:
        if role == "user":
            items.sort(key=lambda i: i[0] != "result")
    tools = [
        (
            t.name,
            t.description,
            sorted(t.parameters.get("properties", {})),
            t.parameters.get("required"),
        )
        for t in req.tools
    ]
    choice = None if req.tool_choice is None else (req.tool_choice.mode, req.tool_choice.name)
    rf = None if req.response_format is None else req.response_format.type
    return {
        "system": "\n\n".join(req.system),
        "turns": turns,
        "tools": tools,
        "tool_choice": choice,
        "sampling": (req.max_tokens, req.temperature, req.top_p, req.stop),
        "response_format": rf,
    }


@pytest.mark.parametrize("target", PROTOCOLS)
@pytest.mark.parametrize("source", PROTOCOLS)
def test_request_meaning_survives(source: str, target: str) -> None:
    body = load_json(REQUESTS[source])
    if source == "gemini" and target in ("openai", "openai_responses"):
        # topK is a hint those targets lack: dropped and reported, not refused.
        read = CONVERTERS[source].request_to_canonical(body)
        read.stop = []
        CONVERTERS[target].request_from_canonical(read, "up")
        assert "generationConfig.topK" in read.dropped
    canonical = CONVERTERS[source].request_to_canonical(body)
    if target == "openai_responses" and canonical.stop:
        with pytest.raises(UnsupportedFeature, match="stop"):
            CONVERTERS[target].request_from_canonical(canonical, "up")
        canonical.stop = []  # the Responses API has no stop sequences
    wire = CONVERTERS[target].request_from_canonical(canonical, "upstream-model")
    wire = json.loads(json.dumps(wire))  # it must be plain JSON
    back = CONVERTERS[target].request_to_canonical(wire)
    want, got = request_meaning(canonical), request_meaning(back)
    if target == "anthropic" and want["response_format"] == "json_object":
        # No native JSON mode: an instruction in the system prompt asks for it.
        want["system"] += "\n\n" + JSON_INSTRUCTION
        want["response_format"] = None
    assert got == want


@pytest.mark.parametrize("target", PROTOCOLS)
def test_json_schema_output_request_crosses(target: str) -> None:
    canonical = CONVERTERS["openai"].request_to_canonical(
        load_json("openai/chat_request_json_schema.json")
    )
    wire = CONVERTERS[target].request_from_canonical(canonical, "upstream-model")
    back = CONVERTERS[target].request_to_canonical(wire)
    assert back.response_format is not None and back.response_format.type == "json_schema"
    assert back.response_format.schema is not None
    props = back.response_format.schema["properties"]
    assert sorted(props) == ["date", "name", "participants"]
    assert props["participants"]["items"]["type"] == "string"


def response_meaning(resp: ChatResponse) -> dict[str, Any]:
    text = "".join(p.text for p in resp.parts if isinstance(p, TextPart))
    calls = [(p.name, json.loads(p.arguments)) for p in resp.parts if isinstance(p, ToolCallPart)]
    usage = resp.usage or Usage()
    return {
        "text": text,
        "calls": calls,
        "finish": resp.finish_reason,
        "usage": (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cached_prompt_tokens,
        ),
    }


SDK_RESPONSE = {
    "openai": sdk.openai_chat_completion,
    "anthropic": sdk.anthropic_message,
    "gemini": sdk.gemini_response,
    "openai_responses": sdk.openai_response,
}


@pytest.mark.parametrize("client", PROTOCOLS)
@pytest.mark.parametrize("path", [(p, proto) for proto, ps in RESPONSES.items() for p in ps])
def test_response_meaning_survives_and_the_client_sdk_reads_it(
    path: tuple[str, str], client: str
) -> None:
    fixture, provider = path
    canonical = CONVERTERS[provider].response_to_canonical(load_json(fixture))
    wire = CONVERTERS[client].response_from_canonical(canonical, "route-name")
    SDK_RESPONSE[client](json.loads(json.dumps(wire)))
    back = CONVERTERS[client].response_to_canonical(wire)
    assert response_meaning(back) == response_meaning(canonical)


def stream_meaning(events: list[Any]) -> dict[str, Any]:
    calls: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for e in events:
        if isinstance(e, ToolCallStart):
            names[e.index] = e.name
            calls[e.index] = []
        elif isinstance(e, ToolCallArgsDelta):
            calls[e.index].append(e.partial_json)
    usage = next((e for e in reversed(events) if isinstance(e, Usage)), Usage())
    return {
        "text": "".join(e.text for e in events if isinstance(e, TextDelta)),
        "calls": [(names[i], json.loads("".join(calls[i]) or "{}")) for i in sorted(calls)],
        "finish": [e.reason for e in events if isinstance(e, Finish)],
        "usage": (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cached_prompt_tokens,
        ),
    }


def _sdk_stream_text(client: str, raw: bytes) -> str:
    if client == "openai":
        return sdk.openai_chat_stream(raw).choices[0].message.content or ""
    if client == "anthropic":
        message = sdk.anthropic_stream(raw)
        return "".join(b.text for b in message.content if b.type == "text")
    if client == "gemini":
        return "".join(c.text or "" for c in sdk.gemini_stream(raw))
    return str(sdk.openai_responses_stream(raw).output_text)


@pytest.mark.parametrize("client", PROTOCOLS)
@pytest.mark.parametrize("path", [(p, proto) for proto, ps in STREAMS.items() for p in ps])
def test_stream_meaning_survives_and_the_client_sdk_reads_it(
    path: tuple[str, str], client: str
) -> None:
    fixture, provider = path
    raw = load_bytes(fixture)
    translator = StreamTranslator(client, provider, "route-name", include_usage=True)
    out = b"".join(translator.feed(raw[i : i + 97]) for i in range(0, len(raw), 97))
    out += translator.close()
    want = stream_meaning(decode_stream(provider, raw))
    got = stream_meaning(decode_stream(client, out))
    assert got == want
    assert translator.usage is not None and translator.finish_reason == want["finish"][0]
    assert _sdk_stream_text(client, out) == want["text"]


def _tool_request(choice: ToolChoice) -> ChatRequest:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return ChatRequest(
        model="x",
        messages=[Message("user", [TextPart("weather in Oslo?")])],
        tools=[Tool("get_weather", "Weather now", schema), Tool("get_time", None, schema)],
        tool_choice=choice,
    )


@pytest.mark.parametrize("target", PROTOCOLS)
@pytest.mark.parametrize(
    "choice",
    [
        ToolChoice("auto"),
        ToolChoice("none"),
        ToolChoice("required"),
        ToolChoice("tool", "get_time"),
    ],
)
def test_tool_choice_crosses(target: str, choice: ToolChoice) -> None:
    wire = CONVERTERS[target].request_from_canonical(_tool_request(choice), "up")
    back = CONVERTERS[target].request_to_canonical(wire)
    assert back.tool_choice == choice
    assert [t.name for t in back.tools] == ["get_weather", "get_time"]


# Lossy on purpose: OpenAI and Anthropic have no "error" finish reason.
_FINISH_EXPECTED = {
    ("openai", "error"): "stop",
    ("anthropic", "error"): "stop",
    ("openai_responses", "error"): "stop",
}


@pytest.mark.parametrize("client", PROTOCOLS)
@pytest.mark.parametrize("reason", ["stop", "length", "tool_calls", "content_filter", "error"])
def test_finish_reasons_cross(client: str, reason: str) -> None:
    parts: list[Any] = [TextPart("x")]
    if reason == "tool_calls":
        parts.append(ToolCallPart("call_1", "f", "{}"))
    resp = ChatResponse("id1", "m", parts, reason, Usage(1, 2, 3))  # type: ignore[arg-type]
    wire = CONVERTERS[client].response_from_canonical(resp, "route")
    back = CONVERTERS[client].response_to_canonical(wire)
    assert back.finish_reason == _FINISH_EXPECTED.get((client, reason), reason)


@pytest.mark.parametrize("target", ["openai", "openai_responses", "gemini"])
def test_tool_result_images_from_anthropic_reach_every_target(target: str) -> None:
    body = {
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "Take a screenshot."},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [
                            {"type": "text", "text": "done"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "iVBORw0KGgo=",
                                },
                            },
                        ],
                    }
                ],
            },
        ],
    }
    wire = CONVERTERS[target].request_from_canonical(
        CONVERTERS["anthropic"].request_to_canonical(body), "up"
    )
    text = json.dumps(wire)
    assert "iVBORw0KGgo=" in text and "done" in text
