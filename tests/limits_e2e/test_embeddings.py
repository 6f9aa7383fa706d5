"""Answers that report no usage: the gateway counts its estimate against tpm and quotas.
Gemini embeddings never report any (through OpenAI's /v1/embeddings and Gemini's own
embedContent and batchEmbedContents); some OpenAI-compatible servers leave it out of chat."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from gateway.errors import Protocol
from gateway.request.usage_estimates import input_tokens_estimate
from tests.limits_e2e.calls import assert_refused
from tests.limits_e2e.conftest import Served
from tests.support.fake_upstream import FakeUpstream, Fault

ROUTE = "embed-gemini"
TEXTS = ["a short text", "x" * 41]
ESTIMATE = 3 + 11  # one token per 4 characters (rounded up), at least one per input


def embed_native(served: Served, key_id: str, method: str, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{served.url}/v1beta/models/{ROUTE}:{method}",
        json=body,
        headers={"x-goog-api-key": served.secret(key_id)},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def counted(served: Served, key_id: str) -> tuple[int, int, int]:
    """(tpm used, day quota used, month quota used) as the admin API reports them."""
    report = served.usage(key_id)
    day, month = report["tokens_per_day"], report["tokens_per_month"]
    return report["tpm"]["used"], day["used"], month["used"]


def test_openai_embeddings_to_gemini_count_what_the_answer_reports(
    served: Served, upstream: FakeUpstream
) -> None:
    with openai.OpenAI(
        base_url=served.url + "/v1", api_key=served.secret("embed-openai"), max_retries=0
    ) as client:
        result = client.embeddings.create(model=ROUTE, input=TEXTS)
    assert upstream.requests[-1].path.endswith("embed-upstream:batchEmbedContents")
    assert result.usage.prompt_tokens == ESTIMATE  # what the client is told...
    assert counted(served, "embed-openai") == (ESTIMATE, ESTIMATE, ESTIMATE)  # ...is charged


def test_gemini_embed_content_and_batch_count_the_estimate(
    served: Served, upstream: FakeUpstream
) -> None:
    single = {"content": {"parts": [{"text": TEXTS[0]}]}}
    embed_native(served, "embed-native", "embedContent", single)
    assert counted(served, "embed-native") == (3, 3, 3)
    batch = {"requests": [{"content": {"parts": [{"text": text}]}} for text in TEXTS]}
    embed_native(served, "embed-native", "batchEmbedContents", batch)
    assert counted(served, "embed-native") == (3 + ESTIMATE,) * 3
    assert len(upstream.requests) == 2


def test_embeddings_use_up_a_quota(served: Served, upstream: FakeUpstream) -> None:
    batch = {"requests": [{"content": {"parts": [{"text": text}]}} for text in TEXTS]}
    embed_native(served, "embed-quota", "batchEmbedContents", batch)  # 14 of 20
    embed_native(served, "embed-quota", "batchEmbedContents", batch)  # admitted below: 28
    refused = httpx.post(
        f"{served.url}/v1/embeddings",
        json={"model": ROUTE, "input": "one more"},
        headers={"authorization": f"Bearer {served.secret('embed-quota')}"},
        timeout=30,
    )
    assert_refused(refused, "insufficient_quota")
    assert len(upstream.requests) == 2


def test_the_estimate_reads_texts_and_falls_back_to_the_body_size() -> None:
    parts = {"content": {"parts": [{"text": "abcd"}, {"text": "efgh"}]}}
    assert input_tokens_estimate(Protocol.GEMINI, parts, b"") == 3  # "abcd efgh"
    assert input_tokens_estimate(Protocol.OPENAI, {"input": ["abcde", ""]}, b"") == 2 + 1
    image = {"content": {"parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}}
    assert input_tokens_estimate(Protocol.GEMINI, image, b"x" * 400) == 100
    assert input_tokens_estimate(Protocol.OPENAI, {"input": [[1, 2, 3]]}, b"x" * 40) == 10


def test_a_chat_answer_without_usage_counts_an_estimate(
    served: Served, upstream: FakeUpstream
) -> None:
    message = {"role": "assistant", "content": "Hello from a server that counts nothing."}
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    upstream.fail_next(Fault(status=200, body=answer))
    response = served.chat("no-usage")
    assert response.status_code == 200 and "usage" not in response.json()
    tpm, day, _ = counted(served, "no-usage")
    assert day == tpm > 1  # the prompt's estimate and at least one completion token


def test_a_large_answer_is_relayed_as_it_came_and_counts_its_usage(
    served: Served, upstream: FakeUpstream
) -> None:
    vectors = [{"object": "embedding", "index": i, "embedding": [0.125] * 1536} for i in range(40)]
    answer = {"object": "list", "data": vectors, "model": "upstream-mini",
              "usage": {"prompt_tokens": 321, "total_tokens": 321}}  # fmt: skip
    upstream.fail_next(Fault(status=200, body=answer))
    response = httpx.post(
        f"{served.url}/v1/embeddings",
        json={"model": "gpt-4o-mini", "input": ["a"] * 40},
        headers={"authorization": f"Bearer {served.secret('large-answer')}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert len(response.content) > 64 * 1024  # searched for its usage, not parsed
    assert response.json() == answer
    assert counted(served, "large-answer")[:2] == (321, 321)
