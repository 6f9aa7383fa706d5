"""System prompts and images reach each provider in its own shape; unsupported asks are 400s."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.protocols.conftest import CLIENTS, PROVIDERS, Matrix, route

SYSTEM = "Answer in one short sentence."
# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PAIRS = [(c, p) for c in CLIENTS for p in PROVIDERS]
IDS = [f"{c}-client-to-{p}" for c, p in PAIRS]


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _ask_with_system_and_image(m: Matrix, client: str, model: str) -> None:
    encoded = base64.b64encode(PNG).decode()
    if client == "openai":
        m.openai().chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{encoded}"},
                        },
                    ],
                },
            ],
        )
    elif client == "anthropic":
        m.anthropic().messages.create(
            model=model,
            max_tokens=64,
            system=SYSTEM,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": encoded,
                            },
                        },
                    ],
                }
            ],
        )
    else:
        with m.gemini() as gemini:
            gemini.models.generate_content(
                model=model,
                contents=[
                    genai_types.Content(
                        role="user",
                        parts=[
                            genai_types.Part(text="What is in this image?"),
                            genai_types.Part.from_bytes(data=PNG, mime_type="image/png"),
                        ],
                    )
                ],
                config=genai_types.GenerateContentConfig(system_instruction=SYSTEM),
            )


def _system_and_image_as_received(provider: str, body: dict[str, Any]) -> tuple[str, str, bytes]:
    """(system text, image media type, image bytes) read the provider's own way."""
    if provider == "openai":
        system, user = body["messages"]
        assert system["role"] == "system"
        image = next(p for p in user["content"] if p["type"] == "image_url")
        header, _, data = image["image_url"]["url"].partition(",")
        assert header.startswith("data:") and header.endswith(";base64")
        return system["content"], header[5:-7], _b64decode(data)
    if provider == "anthropic":
        system = body["system"]
        if isinstance(system, list):
            system = "".join(block["text"] for block in system)
        (message,) = body["messages"]
        image = next(b for b in message["content"] if b["type"] == "image")
        assert image["source"]["type"] == "base64"
        return system, image["source"]["media_type"], _b64decode(image["source"]["data"])
    system_text = "".join(p["text"] for p in body["systemInstruction"]["parts"])
    (content,) = body["contents"]
    inline = next(p["inlineData"] for p in content["parts"] if "inlineData" in p)
    # The REST API takes both spellings; the google-genai SDK itself sends mime_type.
    mime_type = inline.get("mimeType") or inline.get("mime_type")
    return system_text, mime_type, _b64decode(inline["data"])


@pytest.mark.parametrize(("client", "provider"), PAIRS, ids=IDS)
def test_system_prompt_and_image_reach_the_provider_in_its_shape(
    m: Matrix, client: str, provider: str
) -> None:
    _ask_with_system_and_image(m, client, route(provider))
    system, media_type, data = _system_and_image_as_received(provider, m.last())
    assert system == SYSTEM
    assert media_type == "image/png"
    assert data == PNG


def test_n_above_one_to_an_anthropic_route_is_a_400_that_names_it(m: Matrix) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        m.openai().chat.completions.create(
            model=route("anthropic"), messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert "'n'" in caught.value.message
    assert m.upstream.requests == []


def test_candidate_count_to_an_anthropic_route_is_a_400(m: Matrix) -> None:
    config = genai_types.GenerateContentConfig(candidate_count=2)
    with m.gemini() as gemini, pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model=route("anthropic"), contents="hi", config=config)
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert "several" in (caught.value.message or "")
    assert m.upstream.requests == []


def test_anthropic_server_tool_to_an_openai_route_is_a_400_that_names_it(m: Matrix) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        m.anthropic().messages.create(
            model=route("openai"),
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert "web_search_20250305" in caught.value.message
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert m.upstream.requests == []


def test_gemini_built_in_tool_to_an_anthropic_route_is_a_400(m: Matrix) -> None:
    config = genai_types.GenerateContentConfig(
        tools=[genai_types.Tool(google_search=genai_types.GoogleSearch())]
    )
    with m.gemini() as gemini, pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model=route("anthropic"), contents="hi", config=config)
    assert caught.value.code == 400
    assert "googleSearch" in (caught.value.message or "")


def test_missing_max_tokens_is_a_400_in_anthropic_shape(m: Matrix) -> None:
    response = httpx.post(
        m.gateway.url + "/v1/messages",
        headers={"x-api-key": m.key, "anthropic-version": "2023-06-01"},
        json={"model": route("anthropic"), "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
