"""usage_by_search: a large answer's usage found from its keys, as a full parse would read it."""

from __future__ import annotations

import random
from typing import Any

import orjson

from gateway.errors import Protocol
from gateway.protocols import ADAPTERS
from gateway.usage.tokens import Usage, usage_by_search


def usage_of(family: Protocol, data: Any) -> Usage:
    usage = Usage()
    ADAPTERS[family].read_usage(data, usage)
    return usage


def embeddings(count: int, **extra: Any) -> dict[str, Any]:
    vectors = [{"object": "embedding", "index": i, "embedding": [random.random()] * 64}
               for i in range(count)]  # fmt: skip
    return {"object": "list", "data": vectors, "model": "m", **extra}


def test_a_large_answer_reads_as_the_full_parse_would() -> None:
    answers = [
        (Protocol.OPENAI, embeddings(200, usage={"prompt_tokens": 41, "total_tokens": 41})),
        (
            Protocol.OPENAI,
            {
                "id": "c",
                "choices": [{"message": {"content": 'he wrote "usage": {"x": 1} here ' * 3000}}],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": 70000,
                    "prompt_tokens_details": {"cached_tokens": 4},
                },
                "system_fingerprint": "fp",
            },
        ),
        (
            Protocol.ANTHROPIC,
            {
                "content": [{"type": "text", "text": "x" * 90000}],
                "usage": {"input_tokens": 5, "output_tokens": 30000},
            },
        ),
        (
            Protocol.GEMINI,
            {
                "candidates": [{"content": {"parts": [{"text": "y" * 90000}]}}],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 22000},
                "modelVersion": "g",
            },
        ),
    ]
    for family, answer in answers:
        content = orjson.dumps(answer, option=orjson.OPT_INDENT_2)  # spaces around colons too
        found = usage_by_search(ADAPTERS[family].usage_key, content)
        assert found is not None
        assert usage_of(family, found) == usage_of(family, orjson.loads(content))
        assert usage_of(family, found).total > 0


def test_an_answer_naming_no_usage_needs_no_parse() -> None:
    content = orjson.dumps({"embeddings": [{"values": [0.5] * 20000}]})  # Gemini's batch answer
    assert usage_by_search(ADAPTERS[Protocol.GEMINI].usage_key, content) == {}
    assert usage_by_search("usage", content) == {}


def test_what_the_search_cannot_read_falls_back_to_a_parse() -> None:
    assert usage_by_search("usage", b'{"a": 1, "usage": null}') is None
    assert usage_by_search("usage", b'{"usage": {"prompt_tokens": 1') is None  # cut short
    assert usage_by_search("usage", b'{"usage": {' + b'"k": 1, ' * 1000 + b"}}") is None
