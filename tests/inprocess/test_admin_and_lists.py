"""What operators and SDKs read besides generations: model lists in each protocol's shape,
the live event stream, metrics; and the Responses API translated to another provider."""

from __future__ import annotations

import asyncio
import json

from tests.inprocess.calls import bearer, chat
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import ScriptedUpstream


async def test_model_lists_take_the_callers_shape(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    alice = secrets["alice"]
    anthropic = await gateway.client.get(
        "/v1/models", headers={"x-api-key": alice, "anthropic-version": "2023-06-01"}
    )
    assert anthropic.status_code == 200
    assert anthropic.json()["data"][0]["type"] == "model"
    assert "has_more" in anthropic.json()
    gemini = await gateway.client.get("/v1beta/models", headers={"x-goog-api-key": alice})
    assert gemini.status_code == 200
    names = {model["name"] for model in gemini.json()["models"]}
    assert "models/gemini-flash" in names and "models/secret-model" not in names
    one = await gateway.client.get("/v1/models/claude-sonnet", headers=bearer(alice))
    assert (one.status_code, one.json()["id"]) == (200, "claude-sonnet")


async def test_a_finished_request_reaches_a_live_viewer_without_secrets(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    async with gateway.client.stream(
        "GET", "/admin/api/events", headers=bearer(secrets["admin"])
    ) as events:
        assert events.status_code == 200
        lines = events.aiter_lines()
        assert (await chat(gateway, secrets["alice"])).status_code == 200
        async with asyncio.timeout(5):
            line = await anext(lines)
            while not line.startswith("data: "):
                line = await anext(lines)
    event = json.loads(line[len("data: ") :])
    assert (event["key_id"], event["model"], event["provider"], event["status"]) == (
        "alice",
        "gpt-4o-mini",
        "primary",
        200,
    )
    assert (event["prompt_tokens"], event["completion_tokens"]) == (11, 7)
    assert secrets["alice"] not in line


async def test_metrics_count_requests_and_tokens(
    gateway: InProcessGateway, secrets: dict[str, str]
) -> None:
    assert (await chat(gateway, secrets["alice"])).status_code == 200
    assert (await chat(gateway, "mg-wrong")).status_code == 401
    metrics = await gateway.client.get("/metrics", headers=bearer(secrets["admin"]))
    assert metrics.status_code == 200
    samples = dict(
        line.rsplit(" ", 1) for line in metrics.text.splitlines() if not line.startswith("#")
    )

    def value(name: str, *labels: str) -> str:
        [found] = [
            v
            for k, v in samples.items()
            if k.startswith(name + "{") and all(label in k for label in labels)
        ]
        return found

    alice = ('key="alice"', 'model="gpt-4o-mini"', 'provider="primary"')
    assert value("modelgate_requests_total", *alice, 'status_class="2xx"') == "1.0"
    assert value("modelgate_tokens_total", *alice, 'kind="completion"') == "7.0"
    assert value("modelgate_requests_total", 'status_class="4xx"') == "1.0"


async def test_responses_api_streams_from_an_anthropic_provider(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    body = {"model": "claude-sonnet", "input": "hi", "stream": True}
    answer = await gateway.client.post("/v1/responses", headers=bearer(secrets["alice"]), json=body)
    assert answer.status_code == 200, answer.text
    kinds = [
        json.loads(line[len("data: ") :])["type"]
        for line in answer.text.splitlines()
        if line.startswith("data: {")
    ]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert upstream.seen[0].path == "/v1/messages"
