"""count_tokens: counted by a provider that can (passed through or translated), else estimated."""

from __future__ import annotations

from gateway.request.count_tokens import COUNT_SOURCE_HEADER
from tests.inprocess.calls import GEMINI_HELLO, HELLO, key_totals
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import ScriptedUpstream
from tests.support.fake_replies import PROMPT_TOKENS


def _anthropic_key(secret: str) -> dict[str, str]:
    return {"x-api-key": secret, "anthropic-version": "2023-06-01"}


async def test_anthropic_count_passes_through_to_an_anthropic_provider(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    answer = await gateway.client.post(
        "/v1/messages/count_tokens",
        headers=_anthropic_key(secrets["alice"]),
        json={"model": "claude-sonnet", "messages": HELLO},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"input_tokens": PROMPT_TOKENS}
    assert answer.headers[COUNT_SOURCE_HEADER] == "upstream"
    [seen] = upstream.seen
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == {"model": "claude-upstream", "messages": HELLO}
    totals = await key_totals(gateway, secrets["admin"], "alice")
    assert totals["prompt_tokens"] + totals["completion_tokens"] == 0  # counting is free


async def test_gemini_count_is_translated_for_an_anthropic_provider(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    answer = await gateway.client.post(
        "/v1beta/models/claude-sonnet:countTokens",
        headers={"x-goog-api-key": secrets["alice"]},
        json=GEMINI_HELLO,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"totalTokens": PROMPT_TOKENS}
    assert upstream.seen[0].path == "/v1/messages/count_tokens"


async def test_a_route_without_a_counting_provider_gets_an_estimate(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    answer = await gateway.client.post(
        "/v1/messages/count_tokens",
        headers=_anthropic_key(secrets["alice"]),
        json={"model": "gpt-4o-mini", "messages": HELLO},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers[COUNT_SOURCE_HEADER] == "estimate"
    assert answer.json()["input_tokens"] > 0
    assert upstream.seen == []
