"""The official openai SDK against a real gateway process and a real fake upstream."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Deployment
from tests.support.fake_replies import COMPLETION_TOKENS, EMBEDDING, PROMPT_TOKENS
from tests.support.gateway_process import FAKE_UPSTREAM_KEY


def client(d: Deployment, key: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=d.gateway.url + "/v1", api_key=d.keys[key], max_retries=0)


def test_chat_non_streaming_passes_through_with_model_rewritten(
    shared_deployment: Deployment,
) -> None:
    raw = client(shared_deployment).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=0.2
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.usage is not None and completion.usage.total_tokens == 18
    assert raw.headers["x-modelgate-policy"] == shared_deployment.repo.head()
    assert raw.headers["x-request-id"]
    sent = shared_deployment.upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == {
        "model": "upstream-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
    }
    assert sent.headers["Authorization"] == f"Bearer {FAKE_UPSTREAM_KEY}"


def test_client_request_id_is_echoed(shared_deployment: Deployment) -> None:
    raw = client(shared_deployment).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "trace-123"},
    )
    assert raw.headers["x-request-id"] == "trace-123"


def test_chat_streaming_hides_the_usage_chunk_it_asked_for(shared_deployment: Deployment) -> None:
    chunks = list(
        client(shared_deployment).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach this client"
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = shared_deployment.upstream.requests[-1].body
    assert sent is not None and sent["stream_options"] == {"include_usage": True}


def test_chat_streaming_keeps_the_usage_chunk_when_asked(shared_deployment: Deployment) -> None:
    chunks = list(
        client(shared_deployment).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert chunks[-1].usage.completion_tokens == COMPLETION_TOKENS


def test_completions_and_streamed_completions(shared_deployment: Deployment) -> None:
    c = client(shared_deployment)
    done = c.completions.create(model="gpt-4o-mini", prompt="Say hello")
    assert done.choices[0].text == "Hello from the fake upstream."
    streamed = "".join(
        part.choices[0].text
        for part in c.completions.create(model="gpt-4o-mini", prompt="Say hello", stream=True)
        if part.choices
    )
    assert streamed == "Hello from the fake upstream."


def test_embeddings_default_base64_encoding(shared_deployment: Deployment) -> None:
    result = client(shared_deployment).embeddings.create(model="text-embed", input=["a", "b"])
    assert [d.embedding for d in result.data] == [EMBEDDING, EMBEDDING]
    assert shared_deployment.upstream.requests[-1].body["model"] == "embed-small"  # type: ignore[index]


def test_models_list_only_what_the_key_may_use(shared_deployment: Deployment) -> None:
    alice = sorted(m.id for m in client(shared_deployment, "alice").models.list())
    bob = sorted(m.id for m in client(shared_deployment, "bob").models.list())
    assert alice == ["gpt-4o-mini", "text-embed"]
    assert bob == ["gpt-4o-mini", "secret-model", "text-embed"]
    assert client(shared_deployment).models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client(shared_deployment).models.retrieve("secret-model")
