"""What is billed is what a client is told: for every usage field of every protocol, the
adapter's reader (billing) and the converter (translation) count the same tokens.

Each case reports one field on top of a small base usage and names the figures billing must
then count (prompt, completion, cached); both paths are checked against them, for a whole
answer and for a stream.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.protocols import ADAPTERS
from gateway.request.passthrough import PassthroughStream
from gateway.translate import CONVERTERS, StreamTranslator
from gateway.translate.canonical import Usage as CanonicalUsage
from gateway.usage.tokens import Usage
from gateway.vocabulary import Protocol
from tests.translate.fixtures import load_bytes, load_json

Billed = tuple[int, int, int]
"""(prompt, completion, cached) as billing counts them."""

# converter name -> (its protocol, whole answer, stream, the stream is the Responses API's)
WIRES: dict[str, tuple[Protocol, str, str, bool]] = {
    "openai": (
        Protocol.OPENAI,
        "openai/chat_response_text.json",
        "openai/chat_stream_text.sse",
        False,
    ),
    "openai_responses": (
        Protocol.OPENAI,
        "openai/responses_response.json",
        "openai/responses_stream_text.sse",
        True,
    ),
    "anthropic": (
        Protocol.ANTHROPIC,
        "anthropic/response_text.json",
        "anthropic/stream_text.sse",
        False,
    ),
    "gemini": (Protocol.GEMINI, "gemini/response_text.json", "gemini/stream_text.sse", False),
}

CASES: list[tuple[str, str, dict[str, Any], Billed]] = [
    # OpenAI chat completions: base 10 prompt, 5 completion
    ("openai", "prompt", {"prompt_tokens": 10, "completion_tokens": 5}, (10, 5, 0)),
    ("openai", "cached", {"prompt_tokens": 10, "completion_tokens": 5,
                          "prompt_tokens_details": {"cached_tokens": 4}}, (10, 5, 4)),
    ("openai", "cache creation", {"prompt_tokens": 10, "completion_tokens": 5,
                                  "prompt_tokens_details": {"cache_write_tokens": 6}}, (10, 5, 0)),
    ("openai", "reasoning", {"prompt_tokens": 10, "completion_tokens": 5,
                             "completion_tokens_details": {"reasoning_tokens": 3}}, (10, 5, 0)),
    # the Responses API
    ("openai_responses", "prompt", {"input_tokens": 10, "output_tokens": 5}, (10, 5, 0)),
    ("openai_responses", "cached", {"input_tokens": 10, "output_tokens": 5,
                                    "input_tokens_details": {"cached_tokens": 4}}, (10, 5, 4)),
    ("openai_responses", "cache creation", {"input_tokens": 10, "output_tokens": 5,
                                            "input_tokens_details": {"cache_write_tokens": 6}},
     (10, 5, 0)),
    ("openai_responses", "reasoning", {"input_tokens": 10, "output_tokens": 5,
                                       "output_tokens_details": {"reasoning_tokens": 3}},
     (10, 5, 0)),
    # Anthropic: cache reads and writes are prompt tokens outside input_tokens
    ("anthropic", "prompt", {"input_tokens": 10, "output_tokens": 5}, (10, 5, 0)),
    ("anthropic", "cached", {"input_tokens": 10, "output_tokens": 5,
                             "cache_read_input_tokens": 4}, (14, 5, 4)),
    ("anthropic", "cache creation", {"input_tokens": 10, "output_tokens": 5,
                                     "cache_creation_input_tokens": 6}, (16, 5, 0)),
    # Gemini: thoughts and tool-use prompt tokens are outside candidates and prompt
    ("gemini", "prompt", {"promptTokenCount": 10, "candidatesTokenCount": 5}, (10, 5, 0)),
    ("gemini", "cached", {"promptTokenCount": 10, "candidatesTokenCount": 5,
                          "cachedContentTokenCount": 4}, (10, 5, 4)),
    ("gemini", "thoughts", {"promptTokenCount": 10, "candidatesTokenCount": 5,
                            "thoughtsTokenCount": 3}, (10, 8, 0)),
    ("gemini", "tool-use prompt", {"promptTokenCount": 10, "candidatesTokenCount": 5,
                                   "toolUsePromptTokenCount": 7}, (17, 5, 0)),
]  # fmt: skip
IDS = [f"{wire}-{field}" for wire, field, _, _ in CASES]


def _translated(read: CanonicalUsage | None) -> Billed:
    assert read is not None
    return read.prompt_tokens, read.completion_tokens, read.cached_prompt_tokens


def _billed(usage: Usage) -> Billed:
    return usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens


def _answer_with(wire: str, raw: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(load_json(WIRES[wire][1]))
    body["usageMetadata" if wire == "gemini" else "usage"] = raw
    return body


@pytest.mark.parametrize(("wire", "field", "raw", "expected"), CASES, ids=IDS)
def test_a_whole_answer_bills_what_translation_reports(
    wire: str, field: str, raw: dict[str, Any], expected: Billed
) -> None:
    body = _answer_with(wire, raw)
    billed = Usage()
    ADAPTERS[WIRES[wire][0]].read_usage(body, billed)
    translated = CONVERTERS[wire].response_to_canonical(body).usage
    assert _billed(billed) == _translated(translated) == expected
    # and what an OpenAI client then reads is the billed prompt and completion
    shown = CONVERTERS["openai"].response_from_canonical(
        CONVERTERS[wire].response_to_canonical(body), "m"
    )["usage"]
    assert (shown["prompt_tokens"], shown["completion_tokens"]) == expected[:2]


def _stream_with(wire: str, raw: dict[str, Any]) -> bytes:
    """The wire's stream fixture with `raw` as its (final) usage."""
    out = []
    for block in load_bytes(WIRES[wire][2]).replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = block.split(b"\n")
        for i, line in enumerate(lines):
            if line.startswith(b"data: {"):
                lines[i] = b"data: " + orjson.dumps(_set_usage(wire, orjson.loads(line[6:]), raw))
        out.append(b"\n".join(lines))
    return b"\n\n".join(out)


def _set_usage(wire: str, event: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    if wire == "gemini" and "usageMetadata" in event:
        event["usageMetadata"] = raw
    elif wire == "openai" and event.get("usage") is not None:
        event["usage"] = raw
    elif wire == "openai_responses" and event.get("type") == "response.completed":
        event["response"]["usage"] = raw
    elif wire == "anthropic" and event.get("type") == "message_start":
        # the input side first (and one output token so far), the output at the end
        event["message"]["usage"] = {**raw, "output_tokens": 1}
    elif wire == "anthropic" and event.get("type") == "message_delta":
        event["usage"] = {"output_tokens": raw["output_tokens"]}
    return event


@pytest.mark.parametrize(("wire", "field", "raw", "expected"), CASES, ids=IDS)
def test_a_stream_bills_what_translation_reports(
    wire: str, field: str, raw: dict[str, Any], expected: Billed
) -> None:
    protocol, _, _, responses = WIRES[wire]
    stream = _stream_with(wire, raw)
    billing = PassthroughStream(protocol, False, responses)
    relayed = billing.feed(stream) + billing.finish()
    assert billing.ended and relayed
    translator = StreamTranslator("openai", wire, "m")
    translator.feed(stream)
    translator.close()
    assert _billed(billing.usage) == _translated(translator.usage) == expected


def test_anthropic_cumulative_message_delta_bills_what_translation_reports() -> None:
    """A message_delta that repeats the whole usage (as newer API versions do)."""
    raw = {"input_tokens": 10, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 6}
    stream = _stream_with("anthropic", {**raw, "output_tokens": 5}).replace(
        b'"usage":{"output_tokens":5}', b'"usage":' + orjson.dumps({**raw, "output_tokens": 5})
    )
    billing = PassthroughStream(Protocol.ANTHROPIC, False)
    billing.feed(stream)
    translator = StreamTranslator("openai", "anthropic", "m")
    translator.feed(stream)
    translator.close()
    assert _billed(billing.usage) == _translated(translator.usage) == (20, 5, 4)


@pytest.mark.parametrize("odd", [-3, "7", 2.5, None, [1]])
def test_an_odd_figure_counts_as_nothing_for_both(odd: object) -> None:
    raw = {"promptTokenCount": 10, "candidatesTokenCount": odd, "toolUsePromptTokenCount": odd}
    body = _answer_with("gemini", raw)
    billed = Usage()
    ADAPTERS[Protocol.GEMINI].read_usage(body, billed)
    translated = CONVERTERS["gemini"].response_to_canonical(body).usage
    assert _billed(billed) == _translated(translated) == (10, 0, 0)
