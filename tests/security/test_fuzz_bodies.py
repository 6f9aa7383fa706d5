"""Property-based: hostile bodies and headers, on every endpoint of every protocol, to every
provider type, against one real gateway and a recording fake upstream.

For each exchange (see FuzzDeployment.check):
- no 5xx, unless the fake itself failed (then 502/503/504);
- it ends within MAX_REQUEST_S;
- nothing the client sent shows in an upstream request line or header, except an
  `anthropic-beta` value the protocol lets through;
- nothing of the upstream's secrets (its URL, host, key-shaped strings, the credential the
  gateway sent it) reaches the client.

Bounded for the test command (MG_FUZZ_EXAMPLES raises the count per test) and derandomized
when CI is set. The run's request count and slowest request are shown in pytest's summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security import fuzz_strategies as fs
from tests.security.fuzz_deployment import (
    ENDPOINTS,
    PROVIDER_TYPES,
    Endpoint,
    FuzzDeployment,
    route_of,
)
from tests.security.fuzz_upstream import FAIL_STATUSES, REJECT_STATUSES, Answer

CI = bool(os.environ.get("CI"))
FUZZ = settings(
    max_examples=int(os.environ.get("MG_FUZZ_EXAMPLES", "50")),
    deadline=None,  # the time bound is a property of its own, measured per request
    derandomize=CI,  # and then no example database either
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ANSWERS = st.one_of(
    st.just((Answer.REPLY, 200)),
    st.just((Answer.REPLY, 200)),
    st.tuples(st.just(Answer.REJECT), st.sampled_from(REJECT_STATUSES)),
    st.tuples(st.just(Answer.FAIL), st.sampled_from(FAIL_STATUSES)),
    st.just((Answer.GARBAGE, 200)),
)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzDeployment]:
    deployment = FuzzDeployment.start(tmp_path_factory.mktemp("fuzz"))
    try:
        yield deployment
    finally:
        deployment.stop()


def _exchange(
    fuzz: FuzzDeployment,
    endpoint: Endpoint,
    provider_type: str,
    body: bytes,
    headers: list[tuple[str, str]],
    answer: tuple[Answer, int],
) -> None:
    fuzz.upstream.expect(*answer)
    reply = fuzz.call(endpoint, provider_type, body, headers)
    fuzz.check(endpoint, provider_type, reply, headers)


def _arbitrary(model: str) -> fs.Strategy:
    """Any JSON; often an object that names the route, so that it gets past routing."""
    named = st.dictionaries(fs.TEXT | st.sampled_from(_FIELD_NAMES), fs.JSON, max_size=6)
    return st.one_of(fs.JSON, named.map(lambda d: {**d, "model": model}))


_FIELD_NAMES = (
    "messages", "contents", "input", "prompt", "requests", "content", "max_tokens", "stream",
    "tools", "system", "systemInstruction", "generationConfig", "generateContentRequest",
    "tool_choice", "response_format", "text", "thinking", "stream_options", "instructions",
)  # fmt: skip


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@FUZZ
@given(data=st.data())
def test_arbitrary_json_bodies(
    fuzz: FuzzDeployment, endpoint: Endpoint, data: st.DataObject
) -> None:
    provider_type = data.draw(st.sampled_from(PROVIDER_TYPES), "provider")
    body = data.draw(_arbitrary(route_of(provider_type)), "body")
    headers = data.draw(fs.HEADERS, "headers")
    answer = data.draw(ANSWERS, "upstream answer")
    _exchange(fuzz, endpoint, provider_type, fs.encode(body), headers, answer)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@FUZZ
@given(data=st.data())
def test_near_valid_bodies(fuzz: FuzzDeployment, endpoint: Endpoint, data: st.DataObject) -> None:
    provider_type = data.draw(st.sampled_from(PROVIDER_TYPES), "provider")
    body = data.draw(endpoint.body(route_of(provider_type)), "body")
    headers = data.draw(fs.HEADERS, "headers")
    answer = data.draw(ANSWERS, "upstream answer")
    _exchange(fuzz, endpoint, provider_type, fs.encode(body), headers, answer)


def _endpoint(path: str) -> Endpoint:
    return next(e for e in ENDPOINTS if e.path == path)


_GENERATE = "/v1beta/models/{model}:generateContent"
_COUNT = "/v1beta/models/{model}:countTokens"
_USER = {"role": "user", "content": "hi"}
_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": 5}}
FOUND = {
    # What the suite found once (each a 500 before its fix): wrong-type fields in
    # translated bodies. Replayed on every run, whatever the examples drawn.
    "gemini inlineData not an object": (
        _COUNT,
        "openai",
        {"contents": [{"parts": [{"inlineData": []}]}]},
    ),
    "gemini functionCall not an object": (
        _GENERATE,
        "anthropic",
        {"contents": [{"role": "model", "parts": [{"functionCall": "f"}]}]},
    ),
    "gemini systemInstruction.parts not an array": (
        _GENERATE,
        "openai",
        {"contents": [], "systemInstruction": {"parts": 5}},
    ),
    "gemini tool without functionDeclarations": (
        _GENERATE,
        "openai",
        {"contents": [], "tools": [{}]},
    ),
    "anthropic tools not an array": (
        "/v1/messages/count_tokens",
        "gemini",
        {"model": "fz-gemini", "messages": [], "tools": 30.5},
    ),
    "anthropic effort not a string": (
        "/v1/messages",
        "gemini",
        {
            "model": "fz-gemini",
            "max_tokens": 5,
            "messages": [_USER],
            "output_config": {"effort": ["high"]},
        },
    ),
    "openai reasoning_effort not a string": (
        "/v1/chat/completions",
        "anthropic",
        {"model": "fz-anthropic", "messages": [_USER], "reasoning_effort": ["low"]},
    ),
    "openai tool_calls not an array": (
        "/v1/chat/completions",
        "gemini",
        {"model": "fz-gemini", "messages": [_USER, {"role": "assistant", "tool_calls": 5}]},
    ),
    "openai tool-call arguments not a string": (
        "/v1/chat/completions",
        "anthropic",
        {
            "model": "fz-anthropic",
            "messages": [_USER, {"role": "assistant", "tool_calls": [_CALL]}],
        },
    ),
    "responses reasoning summary not an array": (
        "/v1/responses",
        "openai-compatible",
        {"model": "fz-openai-compatible", "input": [{"type": "reasoning", "summary": 5}]},
    ),
    "responses tool type not a string": (
        "/v1/responses",
        "anthropic",
        {"model": "fz-anthropic", "input": "hi", "tools": [{"type": ["web_search"]}]},
    ),
    "responses tools not an array": (
        "/v1/responses",
        "anthropic",
        {"model": "fz-anthropic", "input": "hi", "tools": 5},
    ),
}


@pytest.mark.parametrize("case", FOUND.values(), ids=FOUND.keys())
def test_found_bodies_are_refused_in_the_callers_protocol(
    fuzz: FuzzDeployment, case: tuple[str, str, dict[str, object]]
) -> None:
    path, provider_type, body = case
    endpoint = _endpoint(path)
    fuzz.upstream.expect(Answer.REPLY)
    reply = fuzz.call(endpoint, provider_type, fs.encode(body), [])
    fuzz.check(endpoint, provider_type, reply, [])
    assert reply.status == 400, reply.text
