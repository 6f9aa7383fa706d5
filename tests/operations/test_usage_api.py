"""GET /admin/api/usage: numbers equal to what the fake upstream reported."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Deployment
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS

HI = [{"role": "user", "content": "hi"}]


def usage(d: Deployment, **params: str) -> httpx.Response:
    return httpx.get(
        d.gateway.url + "/admin/api/usage",
        params=params,
        headers={"authorization": f"Bearer {d.keys['admin']}"},
    )


def chat(d: Deployment, key: str, stream: bool = False) -> None:
    with openai.OpenAI(
        base_url=d.gateway.url + "/v1", api_key=d.keys[key], max_retries=0
    ) as client:
        if stream:
            list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
        else:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["key_id"]: k for k in body["keys"]}


def test_usage_per_key_and_model_matches_the_upstream_reports(ops_deployment: Deployment) -> None:
    d = ops_deployment
    chat(d, "alice")
    chat(d, "alice", stream=True)
    chat(d, "alice")
    chat(d, "bob")
    chat(d, "carol")
    with pytest.raises(openai.RateLimitError):
        chat(d, "carol")
    response = usage(d)
    assert response.status_code == 200
    body = response.json()
    assert body["policy"] == d.repo.head()
    keys = by_id(body)
    assert set(keys) == {"alice", "bob", "carol"}  # every key of the applied policy
    alice = keys["alice"]
    per_request = PROMPT_TOKENS + COMPLETION_TOKENS
    assert alice["since_start"] == {
        "requests": 3,
        "errors": 0,
        "prompt_tokens": 3 * PROMPT_TOKENS,
        "completion_tokens": 3 * COMPLETION_TOKENS,
        "cost_usd": 0.0,
        "unpriced_requests": 3,  # the fake upstream's model has no price: cost unknown
    }
    assert alice["tokens_per_day"]["used"] == 3 * per_request
    assert alice["tokens_per_month"]["used"] == 3 * per_request
    assert alice["owner"] == "alice@example.com"
    carol = keys["carol"]
    assert carol["rpm"] == {"limit": 1, "used": 1}
    assert carol["since_start"]["requests"] == 2 and carol["since_start"]["errors"] == 1
    assert carol["tokens_per_day"]["used"] == per_request
    models = {(m["model"], m["provider"]): m for m in body["models"]}
    mini = models[("gpt-4o-mini", "fake")]
    assert (mini["requests"], mini["prompt_tokens"], mini["completion_tokens"]) == (
        5,
        5 * PROMPT_TOKENS,
        5 * COMPLETION_TOKENS,
    )
    assert models[("gpt-4o-mini", "none")]["errors"] == 1  # refused before any upstream


def test_usage_of_one_key(ops_deployment: Deployment) -> None:
    d = ops_deployment
    chat(d, "bob")
    body = usage(d, key="bob").json()
    assert [k["key_id"] for k in body["keys"]] == ["bob"]
    assert body["keys"][0]["since_start"]["completion_tokens"] == COMPLETION_TOKENS
    assert [(m["model"], m["requests"]) for m in body["models"]] == [("gpt-4o-mini", 1)]
    missing = usage(d, key="nobody")
    assert missing.status_code == 404
    assert "nobody" in missing.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/admin/api/usage", "/metrics", "/admin/api/events"])
def test_operations_endpoints_need_an_admin_token(shared_deployment: Deployment, path: str) -> None:
    d = shared_deployment  # refusals change nothing: one gateway for the three paths
    url = d.gateway.url + path
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer mg-" + "x" * 43}).status_code == 401
    client_key = httpx.get(url, headers={"authorization": f"Bearer {d.keys['alice']}"})
    assert client_key.status_code == 403
    assert "admin" in client_key.json()["error"]["message"]
