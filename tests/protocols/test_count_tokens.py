"""Counting input tokens with the Anthropic and Gemini SDKs, against each provider type."""

from __future__ import annotations

import httpx
import pytest
from google.genai import types as genai_types

from tests.protocols.conftest import Matrix, route
from tests.support.fake_replies import PROMPT_TOKENS

SYSTEM = "Be brief."


def _anthropic_count(m: Matrix, model: str) -> tuple[int, str]:
    raw = m.anthropic().messages.with_raw_response.count_tokens(
        model=model,
        system=SYSTEM,
        messages=[{"role": "user", "content": "How many tokens is this?"}],
    )
    return raw.parse().input_tokens, raw.headers["x-modelgate-token-count"]


def test_anthropic_count_passes_through_to_anthropic(m: Matrix) -> None:
    tokens, source = _anthropic_count(m, route("anthropic"))
    assert (tokens, source) == (PROMPT_TOKENS, "upstream")
    sent = m.upstream.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert m.last() == {
        "model": "up-claude",
        "system": SYSTEM,
        "messages": [{"role": "user", "content": "How many tokens is this?"}],
    }


def test_anthropic_count_is_translated_to_gemini_count_tokens(m: Matrix) -> None:
    tokens, source = _anthropic_count(m, route("gemini"))
    assert (tokens, source) == (PROMPT_TOKENS, "upstream")
    assert m.upstream.requests[-1].path == "/v1beta/models/up-gemini:countTokens"
    request = m.last()["generateContentRequest"]
    assert isinstance(request, dict)
    assert request["model"] == "models/up-gemini"
    assert request["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "How many tokens is this?"}]}
    ]


def test_anthropic_count_for_an_openai_route_is_an_estimate(m: Matrix) -> None:
    tokens, source = _anthropic_count(m, route("openai"))
    assert source == "estimate"
    chars = len(SYSTEM) + len("How many tokens is this?")
    assert tokens == -(-chars // 4) + 4
    assert m.upstream.requests == []


@pytest.mark.parametrize(
    ("provider", "expected_path"),
    [
        ("gemini", "/v1beta/models/up-gemini:countTokens"),
        ("anthropic", "/v1/messages/count_tokens"),
    ],
)
def test_gemini_count_tokens_reaches_counting_providers(
    m: Matrix, provider: str, expected_path: str
) -> None:
    with m.gemini() as gemini:
        result = gemini.models.count_tokens(model=route(provider), contents="How many?")
    assert result.total_tokens == PROMPT_TOKENS
    assert m.upstream.requests[-1].path == expected_path
    body = m.last()
    if provider == "anthropic":
        assert body == {
            "model": "up-claude",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "How many?"}]}],
        }
    else:
        assert body == {"contents": [{"parts": [{"text": "How many?"}], "role": "user"}]}


def test_gemini_count_tokens_for_an_openai_route_is_an_estimate(m: Matrix) -> None:
    contents = [genai_types.Content(role="user", parts=[genai_types.Part(text="x" * 40)])]
    with m.gemini() as gemini:
        result = gemini.models.count_tokens(model=route("openai"), contents=contents)
    assert result.total_tokens == 40 // 4 + 4
    assert m.upstream.requests == []


def test_gemini_generate_content_request_form_gets_the_upstream_model(m: Matrix) -> None:
    response = httpx.post(
        f"{m.gateway.url}/v1beta/models/{route('gemini')}:countTokens",
        headers={"x-goog-api-key": m.key},
        json={
            "generateContentRequest": {
                "model": f"models/{route('gemini')}",
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            }
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"totalTokens": PROMPT_TOKENS}
    request = m.last()["generateContentRequest"]
    assert isinstance(request, dict) and request["model"] == "models/up-gemini"


def test_count_without_messages_is_a_400_in_anthropic_shape(m: Matrix) -> None:
    response = httpx.post(
        m.gateway.url + "/v1/messages/count_tokens",
        headers={"x-api-key": m.key},
        json={"model": route("anthropic")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "messages" in response.json()["error"]["message"]
