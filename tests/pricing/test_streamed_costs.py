"""Golden costs through the real gateway process: every upstream protocol called by every
client protocol (as is and translated), whole and streamed, with cached, cache-write and
reasoning tokens reported as each real API reports them (cached_upstream). The cost the
gateway records (its request event, and the header of a whole answer) must equal the
arithmetic below, done by hand from PRICES: USD per million tokens are micro-dollars per
token, so each golden figure is in micro-dollars. The usage the client's SDK reads must keep
the cached and reasoning tokens where its protocol can say them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from gateway.pricing import COST_HEADER
from tests.pricing.cached_upstream import CachedUsageUpstream
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

PRICES = """
prices:
  oai/*: {input: 2.5, output: 10, cached_input: 1.25, reasoning: 12}
  claude/*: {input: 3, output: 15, cached_input: 0.3, cache_write: 3.75}
  gem/*: {input: 0.3, output: 2.5, cached_input: 0.075, reasoning: 3.5}
"""
# prompt 1000 of which 200 cached; completion 500 of which 300 reasoning
OPENAI_MICROS = (1000 - 200) * 2.5 + 200 * 1.25 + (500 - 300) * 10 + 300 * 12  # 7850
# input 300 beside 600 cache reads and 100 cache writes; output 500 (thinking inside)
ANTHROPIC_MICROS = 300 * 3 + 600 * 0.3 + 100 * 3.75 + 500 * 15  # 8955
# prompt 1000 of which 600 cached; 300 candidates and, beside them, 200 thoughts
GEMINI_MICROS = (1000 - 600) * 0.3 + 600 * 0.075 + 300 * 2.5 + 200 * 3.5  # 1615


@dataclass(frozen=True)
class Seen:
    """Usage in canonical terms: prompt includes cached and written, completion reasoning."""

    prompt: int
    cached: int
    written: int
    completion: int
    reasoning: int


UPSTREAMS = {  # route: (its golden micro-dollars, the usage it reports)
    "via-openai": (OPENAI_MICROS, Seen(1000, 200, 0, 500, 300)),
    "via-anthropic": (ANTHROPIC_MICROS, Seen(1000, 600, 100, 500, 0)),
    "via-gemini": (GEMINI_MICROS, Seen(1000, 600, 0, 500, 200)),
}
HI: Any = [{"role": "user", "content": "hi"}]  # each SDK types its own messages


@dataclass
class Answer:
    usage: Seen
    """What the client's SDK read, in canonical terms (None where its protocol cannot say)."""
    cost_header: str | None
    """x-modelgate-cost-usd of a whole answer (never on a stream)."""


@dataclass
class Priced:
    upstream: CachedUsageUpstream
    gateway: GatewayProcess
    key: str
    admin: str

    def last_event_id(self) -> int:
        status = httpx.get(f"{self.gateway.url}/admin/api/status", headers=self._admin())
        return int(status.json()["events"]["last_id"] or 0)

    def request_event(self, after: int) -> dict[str, Any]:
        """The first request event after id `after` (waiting for its settlement)."""
        url = f"{self.gateway.url}/admin/api/events?since={after}"
        timeout = httpx.Timeout(5, read=10)
        with httpx.stream("GET", url, headers=self._admin(), timeout=timeout) as events:
            kind = None
            for line in events.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and kind == "request":
                    found: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    return found
        raise AssertionError("the events stream ended without a request event")

    def _admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin}"}


def _write_policy(repo: PolicyRepo, url: str, key: str, admin: str) -> None:
    repo.write(
        "providers.yaml",
        f"""
        providers:
          oai:
            type: openai
            base_url: {url}/v1
            credentials: [env:FAKE_UPSTREAM_KEY]
            max_retries: 0
          claude:
            type: anthropic
            base_url: {url}
            credentials: [env:FAKE_UPSTREAM_KEY]
            max_retries: 0
          gem:
            type: gemini
            base_url: {url}
            credentials: [env:FAKE_UPSTREAM_KEY]
            max_retries: 0
        """,
    )
    repo.write(
        "routes.yaml",
        """
        routes:
          via-openai: {targets: [oai/up-gpt]}
          via-anthropic: {targets: [claude/up-claude]}
          via-gemini: {targets: [gem/up-gemini]}
        """,
    )
    repo.write("limits.yaml", "default: {}\ntiers: {}\n")
    repo.write(
        "keys.yaml",
        f"""
        keys:
          - id: tester
            hash: {hash_of(key)}
        admins:
          - id: ops
            hash: {hash_of(admin)}
        """,
    )
    repo.write("prices.yaml", PRICES)
    repo.commit("priced policy")


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Priced]:
    root = tmp_path_factory.mktemp("streamed-costs")
    upstream = CachedUsageUpstream().start()
    repo = PolicyRepo(root / "policy")
    key, admin = new_secret(), new_secret()
    _write_policy(repo, upstream.url, key, admin)
    gateway = GatewayProcess(repo.path, root / "state")
    try:
        gateway.start()
        yield Priced(upstream, gateway, key, admin)
    finally:
        gateway.stop()
        upstream.stop()


@pytest.fixture
def fresh(priced: Priced) -> Iterator[Priced]:
    priced.upstream.cumulative_delta = False
    yield priced
    priced.upstream.cumulative_delta = False


# The clients: one call through the official SDK, and what it read -------------------------
def _openai_usage(usage: Any) -> Seen:
    cached = usage.prompt_tokens_details.cached_tokens
    reasoning = usage.completion_tokens_details.reasoning_tokens
    return Seen(usage.prompt_tokens, cached, -1, usage.completion_tokens, reasoning)


def call_openai(p: Priced, model: str, stream: bool) -> Answer:
    with openai.OpenAI(base_url=p.gateway.url + "/v1", api_key=p.key, max_retries=0) as client:
        if not stream:
            raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
            usage = raw.parse().usage
            return Answer(_openai_usage(usage), raw.headers.get(COST_HEADER))
        chunks = list(
            client.chat.completions.create(
                model=model, messages=HI, stream=True, stream_options={"include_usage": True}
            )
        )
        return Answer(_openai_usage(chunks[-1].usage), None)


def _responses_usage(usage: Any) -> Seen:
    cached = usage.input_tokens_details.cached_tokens
    reasoning = usage.output_tokens_details.reasoning_tokens
    return Seen(usage.input_tokens, cached, -1, usage.output_tokens, reasoning)


def call_responses(p: Priced, model: str, stream: bool) -> Answer:
    with openai.OpenAI(base_url=p.gateway.url + "/v1", api_key=p.key, max_retries=0) as client:
        if not stream:
            raw = client.responses.with_raw_response.create(model=model, input="hi")
            return Answer(_responses_usage(raw.parse().usage), raw.headers.get(COST_HEADER))
        with client.responses.stream(model=model, input="hi") as events:
            response = events.get_final_response()
        return Answer(_responses_usage(response.usage), None)


def _anthropic_usage(usage: Any) -> Seen:
    cached, written = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
    prompt = usage.input_tokens + (cached or 0) + (written or 0)
    return Seen(prompt, cached, written, usage.output_tokens, -1)


def call_anthropic(p: Priced, model: str, stream: bool) -> Answer:
    with anthropic.Anthropic(base_url=p.gateway.url, api_key=p.key, max_retries=0) as client:
        if not stream:
            raw = client.messages.with_raw_response.create(
                model=model, max_tokens=1024, messages=HI
            )
            return Answer(_anthropic_usage(raw.parse().usage), raw.headers.get(COST_HEADER))
        with client.messages.stream(model=model, max_tokens=1024, messages=HI) as events:
            message = events.get_final_message()
        return Answer(_anthropic_usage(message.usage), None)


def _gemini_usage(meta: Any) -> Seen:
    thoughts = meta.thoughts_token_count or 0
    completion = (meta.candidates_token_count or 0) + thoughts
    return Seen(meta.prompt_token_count, meta.cached_content_token_count, -1, completion, thoughts)


def call_gemini(p: Priced, model: str, stream: bool) -> Answer:
    options = genai_types.HttpOptions(base_url=p.gateway.url)
    with genai.Client(api_key=p.key, http_options=options) as client:
        if not stream:
            answer = client.models.generate_content(model=model, contents="hi")
            http = answer.sdk_http_response
            header = None if http is None or http.headers is None else http.headers.get(COST_HEADER)
            return Answer(_gemini_usage(answer.usage_metadata), header)
        chunks = list(client.models.generate_content_stream(model=model, contents="hi"))
        return Answer(_gemini_usage(chunks[-1].usage_metadata), None)


CLIENTS: dict[str, Callable[[Priced, str, bool], Answer]] = {
    "openai": call_openai,
    "responses": call_responses,
    "anthropic": call_anthropic,
    "gemini": call_gemini,
}


def _comparable(seen: Seen, expected: Seen) -> Seen:
    """`expected` without what the client's protocol cannot say (-1 in `seen`)."""
    return Seen(
        expected.prompt,
        expected.cached,
        -1 if seen.written == -1 else expected.written,
        expected.completion,
        -1 if seen.reasoning == -1 else expected.reasoning,
    )


# The golden costs ---------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("route", list(UPSTREAMS))
def test_the_recorded_cost_is_the_golden_figure(
    fresh: Priced, route: str, client: str, stream: bool
) -> None:
    """Pass-through (client and upstream of one protocol) and translated alike."""
    micros, reported = UPSTREAMS[route]
    before = fresh.last_event_id()
    answer = CLIENTS[client](fresh, route, stream)

    event = fresh.request_event(before)
    assert (event["model"], event["stream"], event["status"]) == (route, stream, 200)
    assert (event["prompt_tokens"], event["completion_tokens"]) == (1000, 500)
    assert event["cost_usd"] is not None
    assert round(event["cost_usd"] * 1_000_000) == micros
    if stream:
        assert answer.cost_header is None
    else:
        assert answer.cost_header == f"{micros / 1_000_000:.6f}"
    # what the upstream reported reaches the client, translated or not
    assert answer.usage == _comparable(answer.usage, reported)


@pytest.mark.parametrize("client", ["anthropic", "openai"])
def test_a_cumulative_message_delta_keeps_the_cache_figures(fresh: Priced, client: str) -> None:
    """Newer Anthropic API versions repeat every count in message_delta: still one charge."""
    fresh.upstream.cumulative_delta = True
    before = fresh.last_event_id()
    answer = CLIENTS[client](fresh, "via-anthropic", True)
    event = fresh.request_event(before)
    assert round(event["cost_usd"] * 1_000_000) == ANTHROPIC_MICROS
    reported = UPSTREAMS["via-anthropic"][1]
    assert answer.usage == _comparable(answer.usage, reported)


@pytest.mark.parametrize("route", list(UPSTREAMS))
def test_an_openai_stream_not_asking_for_usage_is_priced_all_the_same(
    fresh: Priced, route: str
) -> None:
    """The gateway asks an OpenAI upstream for the usage chunk itself, and hides it."""
    before = fresh.last_event_id()
    with openai.OpenAI(base_url=fresh.gateway.url + "/v1", api_key=fresh.key, max_retries=0) as c:
        chunks = list(c.chat.completions.create(model=route, messages=HI, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    event = fresh.request_event(before)
    assert round(event["cost_usd"] * 1_000_000) == UPSTREAMS[route][0]
