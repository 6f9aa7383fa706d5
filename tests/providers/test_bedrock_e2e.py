"""Bedrock providers end to end: the official openai, anthropic and google-genai SDKs call a
real gateway that signs (SigV4) and translates their calls to Converse and ConverseStream on
the fake Bedrock runtime, which checks every signature with botocore."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from tests.protocols import sdk_calls
from tests.providers.conftest import (
    AWS_KEYS,
    BEDROCK_MODEL,
    CHAIN_KEY,
    CLIENTS,
    WRONG_SECRET,
    Site,
)
from tests.support.fake_bedrock import Reply

ROUTE = "claude-bedrock"
TEXT = "Hello from Bedrock."
"""The fake's default answer (fake_bedrock.Reply), 12 prompt and 5 completion tokens."""
PROMPT, COMPLETION = 12, 5
CALL = {"toolUseId": "tooluse_fake1", "name": sdk_calls.TOOL_NAME, "input": {"city": "Paris"}}
FINAL = "Sunny in Paris, 21 C."


@pytest.mark.parametrize("client", CLIENTS)
def test_text(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    answer = sdk_calls.text(s.m, client, ROUTE)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
        TEXT,
        PROMPT,
        COMPLETION,
    )
    [sent] = s.bedrock.requests
    assert (sent.model, sent.stream) == (BEDROCK_MODEL, False)
    assert sent.body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]
    s.expect_recorded(ROUTE, before, "bedrock", 1, PROMPT, COMPLETION)


@pytest.mark.parametrize("client", CLIENTS)
def test_stream(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    answer, pieces = sdk_calls.stream(s.m, client, ROUTE)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
        TEXT,
        PROMPT,
        COMPLETION,
    )
    assert pieces == len(TEXT.split(" "))  # one per contentBlockDelta the fake sent
    [sent] = s.bedrock.requests
    assert (sent.model, sent.stream) == (BEDROCK_MODEL, True)
    s.expect_recorded(ROUTE, before, "bedrock", 1, PROMPT, COMPLETION)


@pytest.mark.parametrize("client", CLIENTS)
def test_tool_round_trip(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    s.bedrock.script(Reply(text="", tool_use=CALL), Reply(text=FINAL))
    trip = sdk_calls.tool_round_trip(s.m, client, ROUTE)
    assert (trip.call_name, trip.call_args, trip.final_text) == (
        sdk_calls.TOOL_NAME,
        {"city": "Paris"},
        FINAL,
    )
    offer, answer = s.bedrock.requests
    assert offer.stream and not answer.stream
    spec = offer.body["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == sdk_calls.TOOL_NAME
    assert spec["inputSchema"]["json"]["required"] == ["city"]
    used, result = _tool_use_and_result(answer.body["messages"])
    assert (used["name"], used["input"]) == (sdk_calls.TOOL_NAME, {"city": "Paris"})
    assert result["toolUseId"] == used["toolUseId"]
    assert sdk_calls.TOOL_RESULT in str(result["content"])
    s.expect_recorded(ROUTE, before, "bedrock", 2, 2 * PROMPT, 2 * COMPLETION)


def _tool_use_and_result(messages: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The assistant's toolUse block and the user's toolResult block of a Converse history."""
    blocks = [(m["role"], b) for m in messages for b in m["content"]]
    uses = [b["toolUse"] for role, b in blocks if role == "assistant" and "toolUse" in b]
    results = [b["toolResult"] for role, b in blocks if role == "user" and "toolResult" in b]
    assert len(uses) == 1 and len(results) == 1, messages
    return uses[0], results[0]


# -- cache tokens ----------------------------------------------------------------------------

CACHED = {
    "inputTokens": 3,
    "outputTokens": 5,
    "cacheReadInputTokens": 100,
    "cacheWriteInputTokens": 20,
    "totalTokens": 128,
}
"""Bedrock's inputTokens leave out the cache's reads and writes: 123 prompt tokens in all."""


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_cache_read_and_write_tokens_are_counted(s: Site, client: str, stream: bool) -> None:
    before = s.recorded(ROUTE)
    s.bedrock.script(Reply(usage=CACHED))
    prompt, cached = _cached_usage(s, client, stream)
    assert (prompt, cached) == (123, 100)
    s.expect_recorded(ROUTE, before, "bedrock", 1, 123, 5)


def _cached_usage(s: Site, client: str, stream: bool) -> tuple[int | None, int | None]:
    """The prompt tokens (cache included) and cache reads the client was told of."""
    hi: Any = [{"role": "user", "content": "hi"}]
    if client == "openai":
        sdk = s.m.openai()
        if stream:
            chunks = list(
                sdk.chat.completions.create(
                    model=ROUTE,
                    messages=hi,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            usage = chunks[-1].usage
        else:
            usage = sdk.chat.completions.create(model=ROUTE, messages=hi).usage
        assert usage is not None and usage.prompt_tokens_details is not None
        return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens
    if client == "anthropic":
        claude = s.m.anthropic()
        message: anthropic.types.Message
        if stream:
            with claude.messages.stream(model=ROUTE, max_tokens=64, messages=hi) as events:
                message = events.get_final_message()
        else:
            message = claude.messages.create(model=ROUTE, max_tokens=64, messages=hi)
        u = message.usage
        # Anthropic's input_tokens are the uncached ones, as Bedrock's inputTokens.
        assert (u.input_tokens, u.cache_creation_input_tokens) == (3, 20)
        return u.input_tokens + (u.cache_read_input_tokens or 0) + 20, u.cache_read_input_tokens
    with s.m.gemini() as gemini:
        if stream:
            meta = list(gemini.models.generate_content_stream(model=ROUTE, contents="hi"))[
                -1
            ].usage_metadata
        else:
            meta = gemini.models.generate_content(model=ROUTE, contents="hi").usage_metadata
    assert meta is not None
    return meta.prompt_token_count, meta.cached_content_token_count


# -- failures ---------------------------------------------------------------------------------


def test_throttling_cools_the_credential_and_fails_over(s: Site) -> None:
    before = s.recorded("bedrock-failover")
    s.bedrock.script(Reply(throttle=True))
    claude = s.m.anthropic()
    hi: Any = [{"role": "user", "content": "hi"}]
    message = claude.messages.create(model="bedrock-failover", max_tokens=64, messages=hi)
    assert [b.text for b in message.content if b.type == "text"] == [TEXT]
    assert [r.model for r in s.bedrock.requests] == ["first-model", "second-model"]
    cooling = s.credential("bedrock-throttled")
    assert cooling is not None and cooling["state"] == "cooling", cooling
    assert cooling["credential"] == "aws:env:AWS_ID_1"
    assert 20 < cooling["cooling_down_s"] <= 30
    # While it cools, the throttled target is not tried at all.
    s.bedrock.requests.clear()
    claude.messages.create(model="bedrock-failover", max_tokens=64, messages=hi)
    assert [r.model for r in s.bedrock.requests] == ["second-model"]
    s.expect_recorded("bedrock-failover", before, "bedrock-backup", 2, 2 * PROMPT, 2 * COMPLETION)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_wrong_secret_key_is_a_clear_error_without_secrets(s: Site, client: str) -> None:
    route = f"bedrock-wrong-{client}"
    status, message = _refused(s, client, route)
    assert s.bedrock.refused and "signature" in s.bedrock.refused[0].lower()
    assert not s.bedrock.requests  # refused before any answer
    assert status == 502, (status, message)
    assert "no usable upstream credential" in message and "/admin/api/status" in message
    out = s.credential(route)
    assert out is not None and out["credential"] == "aws:env:AWS_ID_0", out
    assert out["state"] == "removed" and "403" in str(out["reason"])
    status_page = str(s.admin_get("/admin/api/status"))
    for secret in (WRONG_SECRET, *AWS_KEYS.values()):
        assert secret not in message
        assert secret not in s.gateway.logs() and secret not in status_page
    assert s.bedrock.url not in message and f":{s.bedrock.port}" not in message
    assert "127.0.0.1" not in message


def _refused(s: Site, client: str, route: str) -> tuple[int, str]:
    """The status and the whole error body a client got."""
    hi: Any = [{"role": "user", "content": "hi"}]
    if client == "openai":
        with pytest.raises(openai.APIStatusError) as oai:
            s.m.openai().chat.completions.create(model=route, messages=hi)
        return oai.value.status_code, oai.value.response.text
    if client == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as claude:
            s.m.anthropic().messages.create(model=route, max_tokens=64, messages=hi)
        return claude.value.status_code, claude.value.response.text
    with s.m.gemini() as gemini, pytest.raises(genai_errors.APIError) as google:
        gemini.models.generate_content(model=route, contents="hi")
    return google.value.code, str(google.value.details)


def test_a_provider_naming_no_credentials_signs_with_the_standard_aws_chain(s: Site) -> None:
    before = s.recorded("bedrock-chain")
    answer = sdk_calls.text(s.m, "openai", "bedrock-chain")
    assert answer.text == TEXT
    [sent] = s.bedrock.requests  # the fake checked the signature with the chain's secret
    assert f"Credential={CHAIN_KEY[0]}/" in sent.headers["authorization"]
    assert sent.headers["x-amz-security-token"] == CHAIN_KEY[2]
    s.expect_recorded("bedrock-chain", before, "bedrock-chain", 1, PROMPT, COMPLETION)
