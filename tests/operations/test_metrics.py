"""GET /metrics parsed with prometheus_client's own parser, after real traffic."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Deployment
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.fake_upstream import Fault

HI = [{"role": "user", "content": "hi"}]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(d: Deployment) -> tuple[str, Samples]:
    response = httpx.get(
        d.gateway.url + "/metrics", headers={"authorization": f"Bearer {d.keys['admin']}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_tokens_latency_and_errors_by_key_model_provider(
    ops_deployment: Deployment, sdk: Callable[..., openai.OpenAI]
) -> None:
    client = sdk
    d = ops_deployment
    for _ in range(3):
        client().chat.completions.create(model="gpt-4o-mini", messages=HI)
    list(client("bob").chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    client("carol").chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client("carol").chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.NotFoundError):
        client().chat.completions.create(model="client-invented-zz9", messages=HI)
    text, m = scrape(d)
    ok = {"model": "gpt-4o-mini", "provider": "fake", "status_class": "2xx"}
    assert value(m, "modelgate_requests_total", key="alice", **ok) == 3
    assert value(m, "modelgate_requests_total", key="bob", **ok) == 1
    tokens = {"model": "gpt-4o-mini", "provider": "fake"}
    assert value(m, "modelgate_tokens_total", key="alice", kind="prompt", **tokens) == (
        3 * PROMPT_TOKENS
    )
    assert value(m, "modelgate_tokens_total", key="alice", kind="completion", **tokens) == (
        3 * COMPLETION_TOKENS
    )
    assert value(m, "modelgate_tokens_total", key="bob", kind="completion", **tokens) == (
        COMPLETION_TOKENS
    )
    assert value(m, "modelgate_request_duration_seconds_count", **tokens) == 5
    assert value(m, "modelgate_time_to_first_byte_seconds_count", **tokens) == 5
    assert value(m, "modelgate_request_duration_seconds_bucket", le="+Inf", **tokens) == 5
    assert value(m, "modelgate_limiter_rejections_total", key="carol", kind="rate") == 1
    refused = {"key": "carol", "model": "gpt-4o-mini", "provider": "none"}
    assert value(m, "modelgate_request_errors_total", error="rate_limited", **refused) == 1
    # A model no route matches is labelled "unknown": client strings never become labels.
    unknown = {"key": "alice", "model": "unknown", "provider": "none", "status_class": "4xx"}
    assert value(m, "modelgate_requests_total", **unknown) == 1
    assert "client-invented-zz9" not in text
    assert value(m, "modelgate_policy_info", commit=d.repo.head()) == 1


def test_policy_reloads_and_credential_cooldowns(
    ops_deployment: Deployment, sdk: Callable[..., openai.OpenAI]
) -> None:
    d = ops_deployment
    first = d.repo.head()
    _, m = scrape(d)
    assert value(m, "modelgate_policy_reloads_total", result="applied") == 1
    assert value(m, "modelgate_policy_rejected") == 0
    d.repo.write("routes.yaml", "routes:\n  broken: {targets: [nowhere/x]}\n")
    bad = d.repo.commit("a route to a provider that does not exist")
    m = wait_for(d, lambda s: value(s, "modelgate_policy_reloads_total", result="rejected") == 1)
    assert value(m, "modelgate_policy_rejected") == 1
    assert value(m, "modelgate_policy_info", commit=first) == 1  # the last good one serves
    d.repo.git("revert", "--no-edit", bad)
    good = d.repo.head()
    m = wait_for(d, lambda s: value(s, "modelgate_policy_info", commit=good) == 1)
    assert value(m, "modelgate_policy_reloads_total", result="applied") == 2
    assert value(m, "modelgate_policy_rejected") == 0

    d.upstream.fail_next(Fault(429, headers={"retry-after": "30"}))
    with pytest.raises(openai.APIStatusError):
        sdk().chat.completions.create(model="gpt-4o-mini", messages=HI)
    _, m = scrape(d)
    ref = {"provider": "fake", "credential": "env:FAKE_UPSTREAM_KEY"}
    assert 20 < value(m, "modelgate_credential_cooldown_seconds", **ref) <= 30


def wait_for(d: Deployment, ok: object, timeout: float = 10) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(d)
        if ok(samples) or time.monotonic() > deadline:  # type: ignore[operator]
            return samples
        time.sleep(0.1)
