"""Claude on Vertex AI end to end: the official openai, anthropic and google-genai SDKs call a
real gateway whose anthropic provider has a `.../publishers/anthropic` base URL. It calls
`:rawPredict` / `:streamRawPredict` with the model in the URL, `anthropic_version` in the
body, and a Bearer token the gateway got for its service account from the fake token
server. The fake upstream refuses (400) a body with a model or without the version."""

from __future__ import annotations

from typing import Any

import pytest

from tests.protocols import sdk_calls
from tests.providers.conftest import CLIENTS, SA_TOKENS, VERTEX_MODEL, VERTEX_PATH, Site
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS, text_of
from tests.support.fake_upstream import Recorded

ROUTE = "claude-vertex"
TEXT = "".join(text_of(6))
MODEL_URL = f"{VERTEX_PATH}/models/{VERTEX_MODEL}"
VERSION = "vertex-2023-10-16"


def _as_vertex_wants_it(s: Site, sent: Recorded, method: str) -> dict[str, Any]:
    """The body of a Vertex AI call, after checking its URL, version and token."""
    assert sent.path == f"{MODEL_URL}:{method}"
    body = sent.body
    assert body is not None and body["anthropic_version"] == VERSION and "model" not in body
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["authorization"] in {f"Bearer {t}" for t in s.tokens.tokens(SA_TOKENS)}
    assert "x-api-key" not in headers and "anthropic-version" not in headers
    return body


@pytest.mark.parametrize("client", CLIENTS)
def test_text(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    answer = sdk_calls.text(s.m, client, ROUTE)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
        TEXT,
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    [sent] = s.upstream.requests
    body = _as_vertex_wants_it(s, sent, "rawPredict")
    assert not body.get("stream")
    s.expect_recorded(ROUTE, before, "vertex-claude", 1, PROMPT_TOKENS, COMPLETION_TOKENS)


@pytest.mark.parametrize("client", CLIENTS)
def test_stream(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    answer, pieces = sdk_calls.stream(s.m, client, ROUTE)
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == (
        TEXT,
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert pieces == len(text_of(6))
    [sent] = s.upstream.requests
    assert _as_vertex_wants_it(s, sent, "streamRawPredict")["stream"] is True
    s.expect_recorded(ROUTE, before, "vertex-claude", 1, PROMPT_TOKENS, COMPLETION_TOKENS)


@pytest.mark.parametrize("client", CLIENTS)
def test_tool_round_trip(s: Site, client: str) -> None:
    before = s.recorded(ROUTE)
    trip = sdk_calls.tool_round_trip(s.m, client, ROUTE)
    assert (trip.call_name, trip.call_args, trip.final_text) == (
        sdk_calls.TOOL_NAME,
        {"city": "Paris"},
        TEXT,
    )
    offer, answer = s.upstream.requests
    offered = _as_vertex_wants_it(s, offer, "streamRawPredict")
    assert [t["name"] for t in offered["tools"]] == [sdk_calls.TOOL_NAME]
    history = _as_vertex_wants_it(s, answer, "rawPredict")["messages"]
    [use] = [b for b in history[-2]["content"] if b["type"] == "tool_use"]
    [result] = [b for b in history[-1]["content"] if b["type"] == "tool_result"]
    assert (use["name"], use["input"]) == (sdk_calls.TOOL_NAME, {"city": "Paris"})
    assert result["tool_use_id"] == use["id"]
    assert sdk_calls.TOOL_RESULT in str(result["content"])
    s.expect_recorded(ROUTE, before, "vertex-claude", 2, 2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)


def test_count_tokens_reads_the_model_from_the_body(s: Site) -> None:
    counted = s.m.anthropic().messages.count_tokens(
        model=ROUTE, messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.input_tokens == PROMPT_TOKENS
    [sent] = s.upstream.requests
    assert sent.path == f"{VERTEX_PATH}/models/count-tokens:rawPredict"
    assert sent.body is not None
    assert (sent.body["model"], sent.body["anthropic_version"]) == (VERTEX_MODEL, VERSION)


def test_the_token_is_the_service_accounts(s: Site) -> None:
    sdk_calls.text(s.m, "anthropic", ROUTE)
    grants = [i for i in s.tokens.issued if i.name == SA_TOKENS and i.token]
    assert grants, "the gateway never asked the token server"
    claims = grants[-1].claims
    assert claims is not None and claims["aud"] == s.tokens.url(SA_TOKENS)
    assert "cloud-platform" in claims["scope"]
