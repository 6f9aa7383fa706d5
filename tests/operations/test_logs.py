"""Access and lifecycle lines in --log-format json and text, from a real gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.operations.conftest import ops_policy
from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.fake_upstream import FakeUpstream, Fault
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import PolicyRepo

HI = [{"role": "user", "content": "hi"}]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_access_and_lifecycle_lines(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = ops_policy(policy_repo, fake_upstream.url)
    gateway = start_gateway(policy_repo, "--log-format", "json")
    with openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=keys["alice"], max_retries=0
    ) as client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
        fake_upstream.fail_next(Fault(429, headers={"retry-after": "5"}))
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    policy_repo.write("routes.yaml", "routes:\n  broken: {targets: [nowhere/x]}\n")
    bad = policy_repo.commit("broken")
    deadline = time.monotonic() + 10
    status: dict[str, Any] = {}
    while status.get("state") != "rejected" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = httpx.get(
            gateway.url + "/admin/api/status", headers={"authorization": f"Bearer {keys['admin']}"}
        ).json()["policy"]
    gateway.stop()
    lines = json_lines(gateway.logs())
    access = [line for line in lines if line["logger"] == "modelgate.access"]
    assert len(access) == 2
    first = access[0]
    assert first["request_id"] == raw.headers["x-request-id"]
    assert (first["key_id"], first["model"], first["provider"], first["status"]) == (
        "alice",
        "gpt-4o-mini",
        "fake",
        200,
    )
    assert (first["prompt_tokens"], first["completion_tokens"]) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert first["latency_ms"] > 0 and first["level"] == "info"
    assert access[1]["status"] == 503 and access[1]["error"] == "unavailable"
    messages = [(line["logger"], line["msg"]) for line in lines]
    assert (
        "modelgate.policy",
        f"policy {policy_repo.git('rev-parse', 'HEAD~1')[:12]} applied",
    ) in (messages)
    assert any(
        logger == "modelgate.policy" and msg.startswith(f"policy {bad[:12]} rejected")
        for logger, msg in messages
    )
    cooled = [line for line in lines if line["msg"] == "credential cooling down"]
    assert cooled and cooled[0]["credential"] == "env:FAKE_UPSTREAM_KEY"


def test_text_access_line(
    fake_upstream: FakeUpstream,
    policy_repo: PolicyRepo,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    keys = ops_policy(policy_repo, fake_upstream.url)
    gateway = start_gateway(policy_repo)
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini\nFORGED LINE", "messages": HI},
        headers={"authorization": f"Bearer {keys['bob']}"},
    )
    assert response.status_code == 400  # outside the model-name grammar: refused, not routed
    gateway.stop()
    access = [line for line in gateway.logs().splitlines() if "modelgate.access" in line]
    assert len(access) == 1
    line = access[0]
    assert "key_id=bob" in line and "status=400" in line and "error=bad_request" in line
    assert f"request_id={response.headers['x-request-id']}" in line
    assert not any(line.startswith("FORGED") for line in gateway.logs().splitlines())
