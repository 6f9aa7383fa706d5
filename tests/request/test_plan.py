"""`plan(call, target)`: the upstream call for each kind of target, decided without I/O."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.errors import UnsupportedFeature
from gateway.request.call import Call
from gateway.request.count_tokens import CountTranslation, count_plan
from gateway.request.plan import Plans, plan
from gateway.request.translation import LARGE_BODY_BYTES, Translation
from gateway.translate.embeddings import EmbeddingsTranslation
from gateway.vocabulary import Op, Protocol
from policies.models import Provider, Route
from policies.snapshot import ResolvedRoute, Target

OPENAI = Provider(type="openai", base_url="https://api.openai.test/v1")
RESPONSES_ONLY = Provider(type="openai", base_url="https://api.openai.test/v1", api="responses")
COMPATIBLE = Provider(type="openai-compatible", base_url="http://local.test/v1")
ANTHROPIC = Provider(type="anthropic", base_url="https://api.anthropic.test")
VERTEX_CLAUDE = Provider(
    type="anthropic",
    base_url="https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic",
)
GEMINI = Provider(type="gemini", base_url="https://gemini.test")
BEDROCK = Provider(
    type="bedrock", base_url="https://bedrock-runtime.us-east-1.amazonaws.com", region="us-east-1"
)

CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
GENERATE = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def target(provider: Provider, model: str = "up-model") -> Target:
    return Target("p", provider, model)


def call(
    protocol: Protocol, op: Op, body: dict[str, Any], stream: bool = False, *targets: Target
) -> Call:
    route = ResolvedRoute("r", "r", Route(targets=("p/up-model",)), targets or (target(OPENAI),))
    raw = json.dumps(body).encode()
    return Call(protocol, op, raw, body, "r", route, "k", stream)


def sent(body: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_same_dialect_passes_through_with_the_upstream_model() -> None:
    planned = plan(call(Protocol.OPENAI, Op.CHAT, CHAT), target(OPENAI))
    assert planned.op is Op.CHAT and planned.answer is None and not planned.hide_usage_chunk
    assert sent(planned.body) == {**CHAT, "model": "up-model"}


def test_an_openai_stream_asks_for_usage_and_hides_the_chunk_it_did_not_ask_for() -> None:
    planned = plan(call(Protocol.OPENAI, Op.CHAT, {**CHAT, "stream": True}, True), target(OPENAI))
    assert planned.hide_usage_chunk
    assert sent(planned.body)["stream_options"] == {"include_usage": True}
    asked = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    assert not plan(call(Protocol.OPENAI, Op.CHAT, asked, True), target(OPENAI)).hide_usage_chunk


def test_a_gemini_body_that_needs_no_change_goes_as_its_bytes() -> None:
    c = call(Protocol.GEMINI, Op.CHAT, GENERATE)
    assert plan(c, target(GEMINI)).body is c.raw


def test_another_protocol_is_translated_and_says_what_it_dropped() -> None:
    body = {**CHAT, "seed": 7}
    planned = plan(call(Protocol.OPENAI, Op.CHAT, body), target(ANTHROPIC))
    assert isinstance(planned.answer, Translation)
    assert sent(planned.body)["model"] == "up-model" and "max_tokens" in sent(planned.body)
    assert planned.dropped == {"seed"}


def test_a_responses_only_provider_is_called_in_the_responses_api() -> None:
    for protocol, op, body in [
        (Protocol.OPENAI, Op.CHAT, CHAT),
        (Protocol.ANTHROPIC, Op.CHAT, MESSAGES),
        (Protocol.GEMINI, Op.CHAT, GENERATE),
    ]:
        planned = plan(call(protocol, op, body), target(RESPONSES_ONLY))
        assert planned.op is Op.RESPONSES
        assert isinstance(planned.answer, Translation)
        assert planned.answer.provider == "openai_responses"
        assert "input" in sent(planned.body)
    responses = {"model": "gpt", "input": "hi"}
    passed = plan(call(Protocol.OPENAI, Op.RESPONSES, responses), target(RESPONSES_ONLY))
    assert passed.op is Op.RESPONSES and passed.answer is None


def test_a_responses_client_reaches_a_chat_only_upstream_as_chat() -> None:
    planned = plan(
        call(Protocol.OPENAI, Op.RESPONSES, {"model": "m", "input": "hi"}), target(COMPATIBLE)
    )
    assert planned.op is Op.CHAT and isinstance(planned.answer, Translation)
    assert sent(planned.body)["messages"] == [{"role": "user", "content": "hi"}]


def test_claude_on_vertex_names_its_version_in_the_body_and_its_model_in_the_url() -> None:
    passed = plan(call(Protocol.ANTHROPIC, Op.CHAT, MESSAGES), target(VERTEX_CLAUDE))
    assert "model" not in sent(passed.body)
    assert sent(passed.body)["anthropic_version"] == "vertex-2023-10-16"
    translated = plan(call(Protocol.OPENAI, Op.CHAT, CHAT), target(VERTEX_CLAUDE))
    assert "model" not in sent(translated.body)
    counted = count_plan(call(Protocol.ANTHROPIC, Op.COUNT_TOKENS, MESSAGES), target(VERTEX_CLAUDE))
    assert sent(counted.body)["model"] == "up-model"


def test_bedrock_is_always_translated_with_its_model_in_the_url_only() -> None:
    planned = plan(call(Protocol.ANTHROPIC, Op.CHAT, MESSAGES), target(BEDROCK, "anthropic.claude"))
    assert isinstance(planned.answer, Translation) and planned.answer.provider == "bedrock"
    assert "model" not in sent(planned.body) and "messages" in sent(planned.body)


def test_embeddings_choose_their_own_translation() -> None:
    body = {"model": "e", "input": ["a", "b"]}
    assert plan(call(Protocol.OPENAI, Op.EMBEDDINGS, body), target(OPENAI)).answer is None
    to_gemini = plan(call(Protocol.OPENAI, Op.EMBEDDINGS, body), target(GEMINI))
    assert isinstance(to_gemini.answer, EmbeddingsTranslation)
    assert len(sent(to_gemini.body)["requests"]) == 2
    with pytest.raises(UnsupportedFeature, match="Embeddings"):
        plan(call(Protocol.OPENAI, Op.EMBEDDINGS, body), target(ANTHROPIC))


def test_completions_go_only_to_chat_completions_upstreams() -> None:
    body = {"model": "m", "prompt": "hi"}
    assert plan(call(Protocol.OPENAI, Op.COMPLETIONS, body), target(OPENAI)).op is Op.COMPLETIONS
    with pytest.raises(UnsupportedFeature, match="completions"):
        plan(call(Protocol.OPENAI, Op.COMPLETIONS, body), target(ANTHROPIC))


def test_a_count_between_protocols_converts_the_answer() -> None:
    counted = count_plan(call(Protocol.ANTHROPIC, Op.COUNT_TOKENS, MESSAGES), target(GEMINI))
    assert isinstance(counted.answer, CountTranslation)
    assert "generateContentRequest" in sent(counted.body)
    answer = counted.answer.client_body({"totalTokens": 12}, "claude")
    assert json.loads(answer) == {"input_tokens": 12}


def test_plans_are_made_once_per_target_and_large_bodies_off_the_loop() -> None:
    made: list[str] = []

    def counting(c: Call, t: Target) -> Any:
        made.append(t.provider_name)
        if t.provider_name == "bad":
            raise UnsupportedFeature("no")
        return plan(c, t)

    good, bad = target(OPENAI), Target("bad", ANTHROPIC, "m")
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * LARGE_BODY_BYTES}]}
    plans = Plans(call(Protocol.OPENAI, Op.CHAT, big, False, good, bad), counting)

    async def prepare() -> None:
        await plans.prepare((good, bad))

    asyncio.run(prepare())
    assert made == ["p", "bad"]
    assert plans(good) is plans(good)
    with pytest.raises(UnsupportedFeature):
        plans(bad)  # the error belongs to its target; failover may go on elsewhere
    assert made == ["p", "bad"]
