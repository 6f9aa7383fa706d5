"""Same-protocol calls forward bytes untouched; Azure OpenAI is called its own way."""

from __future__ import annotations

import httpx
import pytest

from tests.protocols.conftest import AZURE_API_VERSION, AZURE_DEPLOYMENT, Matrix, route
from tests.support.fake_replies import THINKING_PIECES, THINKING_SIGNATURE
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

THINKING_REQUEST = {
    "model": route("anthropic"),
    "max_tokens": 2048,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "messages": [{"role": "user", "content": "hi"}],
}


def _anthropic_headers(m: Matrix) -> dict[str, str]:
    return {"x-api-key": m.key, "anthropic-version": "2023-06-01"}


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_thinking_blocks_pass_through_byte_for_byte(m: Matrix, stream: bool) -> None:
    with httpx.stream(
        "POST",
        m.gateway.url + "/v1/messages",
        headers=_anthropic_headers(m),
        json={**THINKING_REQUEST, "stream": stream},
        timeout=10,
    ) as response:
        received = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert received == m.upstream.sent[-1]
    assert THINKING_SIGNATURE.encode() in received
    assert m.last()["thinking"] == THINKING_REQUEST["thinking"]
    assert m.last()["model"] == "up-claude"


def test_thinking_blocks_reach_the_anthropic_sdk_with_their_signature(m: Matrix) -> None:
    request = {k: v for k, v in THINKING_REQUEST.items()}
    with m.anthropic().messages.stream(**request) as events:  # type: ignore[arg-type]
        message = events.get_final_message()
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "".join(THINKING_PIECES)
    assert thinking.signature == THINKING_SIGNATURE
    assert message.content[1].type == "text"


def test_azure_openai_gets_deployment_url_api_version_and_api_key(m: Matrix) -> None:
    done = m.openai().chat.completions.create(
        model="via-azure", messages=[{"role": "user", "content": "hi"}]
    )
    assert done.choices[0].message.content == "Hello from the fake upstream."
    sent = m.upstream.requests[-1]
    assert sent.path == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert sent.query == {"api-version": AZURE_API_VERSION}
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["api-key"] == FAKE_UPSTREAM_KEY
    assert "authorization" not in headers


def test_azure_openai_behind_the_anthropic_sdk(m: Matrix) -> None:
    with m.anthropic().messages.stream(
        model="via-azure", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as events:
        text = "".join(events.text_stream)
    assert text == "Hello from the fake upstream."
    sent = m.upstream.requests[-1]
    assert sent.path == f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
    assert sent.query == {"api-version": AZURE_API_VERSION}
    assert sent.body is not None and sent.body["stream_options"] == {"include_usage": True}


def test_anthropic_beta_header_reaches_an_anthropic_upstream_only(m: Matrix) -> None:
    beta = "interleaved-thinking-2025-05-14"
    body = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**_anthropic_headers(m), "anthropic-beta": beta}
    for model in (route("anthropic"), route("gemini")):
        response = httpx.post(
            m.gateway.url + "/v1/messages", headers=headers, json={**body, "model": model}
        )
        assert response.status_code == 200, response.text
    to_anthropic, to_gemini = (
        {k.lower(): v for k, v in r.headers.items()} for r in m.upstream.requests[-2:]
    )
    assert to_anthropic["anthropic-beta"] == beta
    assert "anthropic-beta" not in to_gemini
