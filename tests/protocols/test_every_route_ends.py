"""Every client protocol against every provider type, through the real server (issue 13):

- `/v1/responses` reaches each provider type at its own operation: OpenAI itself in the
  Responses API, every other type at its chat endpoint with the translated body;
- a streamed answer's terminal event (OpenAI `[DONE]`, Anthropic `message_stop`, Responses
  `response.completed`, Gemini's chunk with `finishReason`) goes out only once the upstream's
  end and final usage were read and counted: a client that hangs up right after it is
  recorded as a success (200), with exactly the tokens the upstream reported;
- `GET /` and `HEAD /` answer connectivity checks with the product's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import hash_of, new_secret
from tests.support.serving import serving
from tests.support.waiting import eventually

CHUNK_DELAY_S = 0.03
"""Between the fake's events: the upstream's last events arrive apart, as over a network,
so a terminal event sent before the upstream's end would reach the client first."""
TEXT = "Hello from the fake upstream."
AZURE_DEPLOYMENT = "dep"
PROVIDERS = {  # route -> (provider type, upstream model)
    "via-openai-compatible": ("openai-compatible", "up-gpt"),
    "via-openai": ("openai", "up-gpt"),
    "via-anthropic": ("anthropic", "up-claude"),
    "via-gemini": ("gemini", "up-gemini"),
    "via-azure-openai": ("azure-openai", AZURE_DEPLOYMENT),
}
RESPONSES_UPSTREAM_PATHS = {
    "via-openai-compatible": "/v1/chat/completions",
    "via-openai": "/v1/responses",  # pass-through: Responses in, Responses out
    "via-anthropic": "/v1/messages",
    "via-gemini": "/v1beta/models/up-gemini:generateContent",
    "via-azure-openai": f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions",
}


@dataclass
class Site:
    upstream: FakeUpstream
    gateway: GatewayProcess
    key: str
    admin: str

    def totals(self) -> dict[str, float]:
        """What the gateway recorded (since start) and settled (today) for the key."""
        response = httpx.get(
            self.gateway.url + "/admin/api/usage",
            params={"key": "tester"},
            headers={"authorization": f"Bearer {self.admin}"},
            timeout=10,
        )
        report = response.json()["keys"][0]
        return {**report["since_start"], "settled": report["tokens_per_day"]["used"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    upstream = FakeUpstream(chunk_delay_s=CHUNK_DELAY_S).start()
    key, admin = new_secret(), new_secret()
    providers = "".join(
        f"  {kind}:\n    type: {kind}\n"
        f"    base_url: {upstream.url}{'/v1' if kind.startswith('openai') else ''}\n"
        "    credentials: [env:FAKE_UPSTREAM_KEY]\n    max_retries: 0\n"
        for kind, _ in PROVIDERS.values()
    )
    routes = "".join(
        f"  {name}:\n    targets: [{kind}/{model}]\n" for name, (kind, model) in PROVIDERS.items()
    )
    try:
        with serving(
            tmp_path_factory.mktemp("every-route"),
            providers="providers:\n" + providers,
            routes="routes:\n" + routes,
            keys=f"keys:\n  - id: tester\n    hash: {hash_of(key)}\n"
            "    limits: {tokens_per_day: 1000000}\n"
            f"admins:\n  - id: ops\n    hash: {hash_of(admin)}\n",
        ) as gateway:
            yield Site(upstream, gateway, key, admin)
    finally:
        upstream.stop()


@pytest.fixture
def s(site: Site) -> Site:
    site.upstream.reset()
    return site


# the client protocols: request and terminal event ----------------------------------------
HI = [{"role": "user", "content": "hi"}]


def _request(s: Site, client: str, model: str) -> httpx.Request:
    url, key = s.gateway.url, s.key
    bearer = {"authorization": f"Bearer {key}"}
    if client == "openai-chat":
        body: dict[str, Any] = {"model": model, "messages": HI, "stream": True}
        return httpx.Request("POST", url + "/v1/chat/completions", json=body, headers=bearer)
    if client == "responses":
        body = {"model": model, "input": "hi", "stream": True}
        return httpx.Request("POST", url + "/v1/responses", json=body, headers=bearer)
    if client == "anthropic":
        body = {"model": model, "max_tokens": 32, "messages": HI, "stream": True}
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return httpx.Request("POST", url + "/v1/messages", json=body, headers=headers)
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path = f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return httpx.Request("POST", url + path, json=body, headers={"x-goog-api-key": key})


TERMINAL = {
    "openai-chat": b"data: [DONE]",
    "responses": b"event: response.completed",
    "anthropic": b"event: message_stop",
    "gemini": b'"finishReason"',
}
PAIRS = [
    (client, route)
    for client in ("openai-chat", "anthropic", "gemini", "responses")
    for route in ("via-openai-compatible", "via-anthropic", "via-gemini")
] + [("responses", "via-openai"), ("responses", "via-azure-openai")]


def _changed(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


@pytest.mark.parametrize(("client", "route"), PAIRS, ids=[f"{c}-{r}" for c, r in PAIRS])
def test_a_client_that_hangs_up_right_after_the_terminal_event_got_a_whole_answer(
    s: Site, client: str, route: str
) -> None:
    before = s.totals()
    received = b""
    with httpx.Client(timeout=30) as http:
        response = http.send(_request(s, client, route), stream=True)
        assert response.status_code == 200, response.read()
        for chunk in response.iter_raw():
            received += chunk
            if TERMINAL[client] in received:
                break
        response.close()  # the client leaves the moment it has the end
    assert TERMINAL[client] in received, received[-500:]
    eventually(lambda: _changed(before, s.totals())["requests"] >= 1, within_s=10, step_s=0.05)
    assert _changed(before, s.totals()) == {
        "requests": 1,
        "errors": 0,  # not a 499: the client had the whole answer
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "settled": PROMPT_TOKENS + COMPLETION_TOKENS,
        "cost_usd": 0.0,  # the fake's models have no known price: unknown, not $0
        "unpriced_requests": 1,
    }


@pytest.mark.parametrize("route", RESPONSES_UPSTREAM_PATHS)
def test_responses_reach_each_provider_type_at_its_own_operation(s: Site, route: str) -> None:
    body = {"model": route, "input": "hi"}
    answer = httpx.post(
        s.gateway.url + "/v1/responses",
        json=body,
        headers={"authorization": f"Bearer {s.key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    parsed = answer.json()
    assert parsed["object"] == "response" and parsed["status"] == "completed"
    assert parsed["output"][-1]["content"][0]["text"] == TEXT
    usage = parsed["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    (sent,) = s.upstream.requests
    assert sent.path == RESPONSES_UPSTREAM_PATHS[route]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_root_answers_connectivity_checks_with_the_products_name(s: Site, method: str) -> None:
    answer = httpx.request(method, s.gateway.url + "/", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == ("ModelGate\n" if method == "GET" else "")
    assert "x-modelgate-policy" not in answer.headers  # nothing beyond the name
