"""Every client SDK against every provider type: text, stream and a tool round trip."""

from __future__ import annotations

import json

import pytest

from tests.protocols import sdk_calls
from tests.protocols.conftest import CLIENTS, PROVIDERS, Matrix, route
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS, TOOL_ARGS
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

EXPECTED_TEXT = "Hello from the fake upstream."
PAIRS = [(c, p) for c in CLIENTS for p in PROVIDERS]
IDS = [f"{c}-client-to-{p}" for c, p in PAIRS]

UPSTREAM_PATHS = {
    ("openai", False): "/v1/chat/completions",
    ("openai", True): "/v1/chat/completions",
    ("anthropic", False): "/v1/messages",
    ("anthropic", True): "/v1/messages",
    ("gemini", False): "/v1beta/models/up-gemini:generateContent",
    ("gemini", True): "/v1beta/models/up-gemini:streamGenerateContent",
}


def _assert_reached(m: Matrix, provider: str, stream: bool) -> None:
    sent = m.upstream.requests[-1]
    assert sent.path == UPSTREAM_PATHS[(provider, stream)]
    assert m.key not in repr(sent.headers) and m.key not in repr(sent.query)
    assert any(FAKE_UPSTREAM_KEY in value for value in sent.headers.values())
    if provider == "gemini" and stream:
        assert sent.query == {"alt": "sse"}
    body = m.last()
    if provider != "gemini":
        assert body["model"] == f"up-{'gpt' if provider == 'openai' else 'claude'}"
        assert bool(body.get("stream")) is stream


@pytest.mark.parametrize(("client", "provider"), PAIRS, ids=IDS)
def test_text(m: Matrix, client: str, provider: str) -> None:
    answer = sdk_calls.text(m, client, route(provider))
    assert answer.text == EXPECTED_TEXT
    assert (answer.prompt_tokens, answer.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    _assert_reached(m, provider, stream=False)


@pytest.mark.parametrize(("client", "provider"), PAIRS, ids=IDS)
def test_stream(m: Matrix, client: str, provider: str) -> None:
    answer, pieces = sdk_calls.stream(m, client, route(provider))
    assert answer.text == EXPECTED_TEXT
    assert pieces > 1, "the text must arrive in several pieces, not in one at the end"
    assert (answer.prompt_tokens, answer.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    _assert_reached(m, provider, stream=True)


def _tool_definitions(provider: str, body: dict[str, object]) -> list[str]:
    tools = body["tools"]
    assert isinstance(tools, list)
    if provider == "openai":
        return [t["function"]["name"] for t in tools]
    if provider == "anthropic":
        assert all("input_schema" in t for t in tools)
        return [t["name"] for t in tools]
    return [d["name"] for t in tools for d in t["functionDeclarations"]]


def _tool_result(provider: str, body: dict[str, object]) -> str:
    """The tool result's text as the provider received it, in the provider's shape."""
    if provider == "openai":
        messages = body["messages"]
        assert isinstance(messages, list)
        last = messages[-1]
        assert (
            last["role"] == "tool" and last["tool_call_id"] == messages[-2]["tool_calls"][0]["id"]
        )
        return str(last["content"])
    if provider == "anthropic":
        messages = body["messages"]
        assert isinstance(messages, list)
        block = messages[-1]["content"][0]
        assert block["type"] == "tool_result"
        assert block["tool_use_id"] == messages[-2]["content"][-1]["id"]
        content = block["content"]
        return content if isinstance(content, str) else "".join(c["text"] for c in content)
    contents = body["contents"]
    assert isinstance(contents, list)
    response = contents[-1]["parts"][0]["functionResponse"]
    assert response["name"] == sdk_calls.TOOL_NAME
    assert contents[-2]["parts"][0]["functionCall"]["name"] == sdk_calls.TOOL_NAME
    return str(response["response"]["result"])


@pytest.mark.parametrize(("client", "provider"), PAIRS, ids=IDS)
def test_tool_round_trip(m: Matrix, client: str, provider: str) -> None:
    trip = sdk_calls.tool_round_trip(m, client, route(provider))
    assert trip.call_name == sdk_calls.TOOL_NAME
    assert trip.call_args == {"city": "Paris"} == json.loads(TOOL_ARGS)
    assert trip.final_text == EXPECTED_TEXT
    first, second = m.upstream.requests[-2:]
    assert first.body is not None and second.body is not None
    assert _tool_definitions(provider, first.body) == [sdk_calls.TOOL_NAME]
    assert _tool_definitions(provider, second.body) == [sdk_calls.TOOL_NAME]
    assert _tool_result(provider, second.body) == sdk_calls.TOOL_RESULT
    _assert_reached(m, provider, stream=False)
