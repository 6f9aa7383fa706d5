"""The google-genai SDK's other calls, under /v1 and /v1beta, and Gemini's raw REST forms."""

from __future__ import annotations

import json

import httpx
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.protocols.conftest import Matrix, route
from tests.support.fake_replies import EMBEDDING, PROMPT_TOKENS

VERSIONS = ["v1", "v1beta"]
ALL_ROUTES = {
    "via-openai", "via-anthropic", "via-gemini", "via-azure", "embed-google", "embed-oai",
    "e401-openai", "e429-openai", "e401-anthropic", "e429-anthropic", "e401-gemini",
    "e429-gemini",
}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_models_list_and_get(m: Matrix, version: str) -> None:
    with m.gemini(version) as gemini:
        names = {model.name for model in gemini.models.list()}
        one = gemini.models.get(model="via-gemini")
    # An e401-* route leaves the list once a 401 took its only credential out (by design:
    # a route with no usable credential is not listed), so the order of tests matters here.
    refusable = {f"models/{name}" for name in ALL_ROUTES if name.startswith("e401-")}
    assert {f"models/{name}" for name in ALL_ROUTES} - refusable <= names
    assert names <= {f"models/{name}" for name in ALL_ROUTES}
    assert one.name == "models/via-gemini"
    assert one.supported_actions and "generateContent" in one.supported_actions
    assert m.upstream.requests == []


def test_models_list_answers_openai_shape_to_a_bearer_key(m: Matrix) -> None:
    listed = httpx.get(m.gateway.url + "/v1/models", headers={"authorization": f"Bearer {m.key}"})
    assert listed.json()["object"] == "list"
    gemini_style = httpx.get(m.gateway.url + "/v1/models", params={"key": m.key})
    assert "models" in gemini_style.json()


@pytest.mark.parametrize("version", VERSIONS)
def test_generate_under_each_api_version(m: Matrix, version: str) -> None:
    with m.gemini(version) as gemini:
        response = gemini.models.generate_content(model=route("anthropic"), contents="hi")
    assert response.text == "Hello from the fake upstream."


@pytest.mark.parametrize(
    ("model", "upstream_path"),
    [
        ("embed-google", "/v1beta/models/up-embed:batchEmbedContents"),
        ("embed-oai", "/v1/embeddings"),
    ],
)
def test_embed_content_with_the_sdk(m: Matrix, model: str, upstream_path: str) -> None:
    config = genai_types.EmbedContentConfig(output_dimensionality=3)
    with m.gemini() as gemini:
        result = gemini.models.embed_content(
            model=model, contents=["first", "second"], config=config
        )
    assert result.embeddings is not None
    assert [e.values for e in result.embeddings] == [EMBEDDING, EMBEDDING]
    sent = m.upstream.requests[-1]
    assert sent.path == upstream_path
    body = m.last()
    if model == "embed-google":
        requests = body["requests"]
        assert isinstance(requests, list)
        assert [r["model"] for r in requests] == ["models/up-embed", "models/up-embed"]
        assert [r["content"]["parts"][0]["text"] for r in requests] == ["first", "second"]
    else:
        assert body["input"] == ["first", "second"]
        assert body["dimensions"] == 3


@pytest.mark.parametrize("model", ["embed-google", "embed-oai"])
def test_embed_content_rest_form(m: Matrix, model: str) -> None:
    response = httpx.post(
        f"{m.gateway.url}/v1beta/models/{model}:embedContent",
        headers={"x-goog-api-key": m.key},
        json={"content": {"parts": [{"text": "one"}]}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"embedding": {"values": EMBEDDING}}
    if model == "embed-google":
        assert m.upstream.requests[-1].path.endswith("up-embed:batchEmbedContents")
        assert m.last() == {
            "requests": [{"content": {"parts": [{"text": "one"}]}, "model": "models/up-embed"}]
        }


@pytest.mark.parametrize("provider", ["gemini", "anthropic", "openai"])
def test_stream_without_alt_sse_is_one_json_array(m: Matrix, provider: str) -> None:
    with httpx.stream(
        "POST",
        f"{m.gateway.url}/v1beta/models/{route(provider)}:streamGenerateContent",
        headers={"x-goog-api-key": m.key},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        timeout=10,
    ) as response:
        pieces = list(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    chunks = json.loads(b"".join(pieces))
    assert isinstance(chunks, list) and len(chunks) > 1
    text = "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )
    assert text == "Hello from the fake upstream."
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == PROMPT_TOKENS
    if provider == "gemini":
        assert m.upstream.requests[-1].query == {"alt": "sse"}


def test_unknown_method_is_a_404_in_gemini_shape(m: Matrix) -> None:
    response = httpx.post(
        f"{m.gateway.url}/v1beta/models/via-gemini:predictLongRunning",
        headers={"x-goog-api-key": m.key},
        json={},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["status"] == "NOT_FOUND" and "predictLongRunning" in error["message"]


def test_stream_error_before_the_first_byte_reaches_the_sdk(m: Matrix) -> None:
    with m.gemini() as gemini, pytest.raises(genai_errors.ClientError) as caught:
        list(gemini.models.generate_content_stream(model="no-such-model", contents="hi"))
    assert caught.value.code == 404
