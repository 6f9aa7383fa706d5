"""Embeddings between OpenAI and Gemini, both directions."""

from __future__ import annotations

import base64
import struct

import pytest

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate import embeddings


def test_openai_request_to_gemini_batch() -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "bb"], "dimensions": 256}
    out = embeddings.openai_request_to_gemini(body, "gemini-embedding-001")
    assert out == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "a"}]},
                "outputDimensionality": 256,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "bb"}]},
                "outputDimensionality": 256,
            },
        ]
    }


def test_token_inputs_and_bad_inputs_are_refused() -> None:
    with pytest.raises(UnsupportedFeature):
        embeddings.openai_request_to_gemini({"input": [[1, 2, 3]]}, "g")
    with pytest.raises(BadRequest) as info:
        embeddings.openai_request_to_gemini({"input": 3}, "g")
    assert info.value.param == "input"


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_gemini_answer_to_openai(fmt: str) -> None:
    body = {"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}
    out = embeddings.gemini_response_to_openai(body, "route", ["abcd", "abcdefgh"], fmt)
    assert out["object"] == "list" and out["model"] == "route"
    assert out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    first = out["data"][0]["embedding"]
    if fmt == "base64":
        first = list(struct.unpack("<2f", base64.b64decode(first)))
    assert first == [0.5, -1.0] and out["data"][1]["index"] == 1
    single = embeddings.gemini_response_to_openai({"embedding": {"values": [1.0]}}, "r", ["x"])
    assert single["data"] == [{"object": "embedding", "index": 0, "embedding": [1.0]}]


def test_gemini_requests_to_openai_and_answers_back() -> None:
    single = {
        "content": {"parts": [{"text": "hello"}, {"text": "world"}]},
        "outputDimensionality": 8,
    }
    assert embeddings.gemini_request_to_openai(single, "text-embedding-3-small") == {
        "model": "text-embedding-3-small",
        "input": ["hello world"],
        "dimensions": 8,
        "encoding_format": "float",
    }
    batch = {"requests": [{"model": "models/x", "content": {"parts": [{"text": t}]}} for t in "ab"]}
    assert embeddings.gemini_request_to_openai(batch, "m")["input"] == ["a", "b"]
    packed = base64.b64encode(struct.pack("<2f", 1.0, 2.0)).decode()
    answer = {"data": [{"index": 1, "embedding": packed}, {"index": 0, "embedding": [3.0]}]}
    assert embeddings.openai_response_to_gemini(answer, batch=True) == {
        "embeddings": [{"values": [3.0]}, {"values": [1.0, 2.0]}]
    }
    assert embeddings.openai_response_to_gemini(answer, batch=False) == {
        "embedding": {"values": [3.0]}
    }
    with pytest.raises(UnsupportedFeature):
        embeddings.gemini_request_inputs({"content": {"parts": [{"inlineData": {}}]}})
