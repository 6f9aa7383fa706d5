"""Requests the in-process tests send, in each protocol's own form."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.payloads import TrafficTotals
from tests.inprocess.harness import InProcessGateway

HELLO = [{"role": "user", "content": "hi"}]
GEMINI_HELLO = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def chat(
    gateway: InProcessGateway, secret: str, model: str = "gpt-4o-mini", **extra: Any
) -> httpx.Response:
    """An OpenAI chat completion."""
    body = {"model": model, "messages": HELLO, **extra}
    return await gateway.client.post("/v1/chat/completions", headers=bearer(secret), json=body)


async def message(
    gateway: InProcessGateway, secret: str, model: str = "claude-sonnet", **extra: Any
) -> httpx.Response:
    """An Anthropic message, with the key where Anthropic's SDK puts it."""
    body = {"model": model, "max_tokens": 64, "messages": HELLO, **extra}
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    return await gateway.client.post("/v1/messages", headers=headers, json=body)


async def key_totals(gateway: InProcessGateway, admin: str, key_id: str) -> TrafficTotals:
    """What the gateway recorded for a key since it started (GET /admin/api/usage)."""
    answer = await gateway.client.get(
        "/admin/api/usage", params={"key": key_id}, headers=bearer(admin)
    )
    assert answer.status_code == 200, answer.text
    totals: TrafficTotals = answer.json()["keys"][0]["since_start"]
    return totals
