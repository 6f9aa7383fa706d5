"""The schema bomb: a few hundred bytes of `$defs`/`$ref` that used to freeze a worker.

Against the real server with a Gemini-type route: the bomb as an OpenAI chat tool, as an
OpenAI `response_format`, as a Responses `text.format` (translated before the gateway finds
that Gemini offers no responses) and as an Anthropic tool is answered 400 at once, and
nothing reaches the upstream; shared (non-recursive) `$ref`s still arrive inlined.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import new_secret
from tests.support.raw_client import post_json
from tests.support.schema_bomb import bomb_defs
from tests.support.serving import one_key, serving

ANSWER_WITHIN_S = 1.0


def _bomb() -> dict[str, Any]:
    """320 bytes (3**32 nodes written out)."""
    return {"$ref": "#/$defs/a", "$defs": bomb_defs()}


SHARED = {
    "$defs": {"City": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "type": "object",
    "properties": {"from": {"$ref": "#/$defs/City"}, "to": {"$ref": "#/$defs/City"}},
    "required": ["from", "to"],
}
CITY = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}}


class Site:
    def __init__(self, upstream: FakeUpstream, gateway: GatewayProcess, key: str) -> None:
        self.upstream, self.gateway, self.key = upstream, gateway, key

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """POST over a raw socket; the status, the JSON answer and the seconds it took."""
        key = self.key.encode()
        auth = [
            (b"authorization", b"Bearer " + key),
            (b"x-api-key", key),
            (b"anthropic-version", b"2023-06-01"),
        ]
        reply = post_json(self.gateway.port, path, auth, body, timeout_s=3)
        return reply.status, reply.json(), reply.elapsed_s


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = FakeUpstream().start()
    secret = new_secret()
    try:
        with serving(
            tmp_path_factory.mktemp("schema-bomb"),
            providers=f"""
            providers:
              gemini:
                type: gemini
                base_url: {upstream.url}
                credentials: [env:FAKE_UPSTREAM_KEY]
                max_retries: 0
            """,
            routes="routes:\n  gem:\n    targets: [gemini/up-gemini]\n",
            keys=one_key(secret),
            kill=True,  # a frozen worker (the bug) would not stop on SIGTERM
        ) as gateway:
            yield Site(upstream, gateway, secret)
    finally:
        upstream.stop()


@pytest.fixture
def s(site: Site) -> Site:
    site.upstream.reset()
    return site


MESSAGES = [{"role": "user", "content": "hi"}]


def _openai_tool(schema: dict[str, Any]) -> dict[str, Any]:
    function = {"name": "plan", "parameters": schema}
    return {
        "model": "gem",
        "messages": MESSAGES,
        "tools": [{"type": "function", "function": function}],
    }


def _openai_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    spec = {"name": "out", "schema": schema}
    return {
        "model": "gem",
        "messages": MESSAGES,
        "response_format": {"type": "json_schema", "json_schema": spec},
    }


def _responses_text_format(schema: dict[str, Any]) -> dict[str, Any]:
    fmt = {"type": "json_schema", "name": "out", "schema": schema}
    return {"model": "gem", "input": "hi", "text": {"format": fmt}}


def _anthropic_tool(schema: dict[str, Any]) -> dict[str, Any]:
    tool = {"name": "plan", "input_schema": schema}
    return {"model": "gem", "max_tokens": 10, "messages": MESSAGES, "tools": [tool]}


CASES = {
    "openai-tool": ("/v1/chat/completions", _openai_tool),
    "openai-response-format": ("/v1/chat/completions", _openai_response_format),
    "responses-text-format": ("/v1/responses", _responses_text_format),
    "anthropic-tool": ("/v1/messages", _anthropic_tool),
}


@pytest.mark.parametrize("case", CASES)
def test_the_bomb_is_refused_at_once_and_nothing_goes_upstream(s: Site, case: str) -> None:
    path, shape = CASES[case]
    assert len(json.dumps(_bomb(), separators=(",", ":"))) <= 324
    status, answer, took = s.post(path, shape(_bomb()))
    assert status == 400, answer
    assert took < ANSWER_WITHIN_S
    message = json.dumps(answer)
    assert "recursive" in message and "Gemini" in message
    assert s.upstream.requests == []
    # The worker is free: a legitimate request right after is served.
    status, answer, _ = s.post("/v1/chat/completions", _openai_tool(SHARED))
    assert status == 200, answer


def test_shared_refs_arrive_inlined(s: Site) -> None:
    status, answer, _ = s.post("/v1/chat/completions", _openai_tool(SHARED))
    assert status == 200, answer
    sent = s.upstream.requests[-1].body
    assert sent is not None
    (declaration,) = sent["tools"][0]["functionDeclarations"]
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "properties": {"from": CITY, "to": CITY},
        "required": ["from", "to"],
    }


def test_a_response_schema_with_shared_refs_arrives_inlined(s: Site) -> None:
    status, answer, _ = s.post("/v1/messages", _anthropic_tool(SHARED))
    assert status == 200, answer
    status, answer, _ = s.post("/v1/chat/completions", _openai_response_format(SHARED))
    assert status == 200, answer
    sent = s.upstream.requests[-1].body
    assert sent is not None
    assert sent["generationConfig"]["responseSchema"]["properties"] == {"from": CITY, "to": CITY}


def test_a_value_nested_past_what_can_be_sent_is_a_400(s: Site) -> None:
    deep: Any = "x"
    for _ in range(300):  # orjson reads 1024 levels but writes 254
        deep = [deep]
    schema = {"type": "object", "properties": {"a": {"type": "number", "minimum": deep}}}
    status, answer, _ = s.post("/v1/chat/completions", _openai_tool(schema))
    assert status == 400, answer
    assert "nests values too deeply" in json.dumps(answer)
    assert s.upstream.requests == []
