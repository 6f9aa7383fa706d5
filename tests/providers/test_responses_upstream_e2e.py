"""An openai provider with `api: responses` end to end: the official openai (chat
completions), anthropic and google-genai SDKs reach a Responses-only upstream through
translation; the gateway calls `{base_url}/responses`, whole and streamed, and the fake
upstream answers in the Responses API's shapes (checked against the openai SDK's own types
in tests/protocols/test_fake_accepts_what_apis_accept.py)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.protocols import sdk_calls
from tests.providers.conftest import CLIENTS, RESPONSES_MODEL, Site
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS, text_of
from tests.support.fake_upstream import Recorded
from tests.support.gateway_process import FAKE_UPSTREAM_KEY

ROUTE = "codex"
TEXT = "".join(text_of(6))


def _responses_call(sent: Recorded, stream: bool) -> dict[str, Any]:
    """The body of a Responses API call, after checking its URL, model, key and mode."""
    assert sent.path == "/v1/responses"
    body = sent.body
    assert body is not None and body["model"] == RESPONSES_MODEL
    assert bool(body.get("stream")) is stream
    assert "messages" not in body and "contents" not in body  # translated, not passed on
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["authorization"] == f"Bearer {FAKE_UPSTREAM_KEY}"
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
    _responses_call(sent, stream=False)
    s.expect_recorded(ROUTE, before, "codex", 1, PROMPT_TOKENS, COMPLETION_TOKENS)


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
    _responses_call(sent, stream=True)
    s.expect_recorded(ROUTE, before, "codex", 1, PROMPT_TOKENS, COMPLETION_TOKENS)


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
    offered = _responses_call(offer, stream=True)
    assert [(t["type"], t["name"]) for t in offered["tools"]] == [("function", sdk_calls.TOOL_NAME)]
    items = _responses_call(answer, stream=False)["input"]
    [call] = [i for i in items if i.get("type") == "function_call"]
    assert (call["name"], call["arguments"].replace(" ", "")) == (
        sdk_calls.TOOL_NAME,
        '{"city":"Paris"}',
    )
    last = items[-1]
    assert last["type"] == "function_call_output" and last["call_id"] == call["call_id"]
    assert sdk_calls.TOOL_RESULT in str(last["output"])
    s.expect_recorded(ROUTE, before, "codex", 2, 2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_responses_client_passes_through(s: Site, stream: bool) -> None:
    before = s.recorded(ROUTE)
    sdk = s.m.openai()
    done: openai.types.responses.Response
    if stream:
        with sdk.responses.stream(model=ROUTE, input="hi") as events:
            done = events.get_final_response()
    else:
        done = sdk.responses.create(model=ROUTE, input="hi")
    assert done.output_text == TEXT
    assert done.usage is not None and done.usage.input_tokens == PROMPT_TOKENS
    [sent] = s.upstream.requests
    assert _responses_call(sent, stream=stream)["input"] == "hi"
    s.expect_recorded(ROUTE, before, "codex", 1, PROMPT_TOKENS, COMPLETION_TOKENS)
