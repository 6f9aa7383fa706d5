"""Client calls of limits tests: chat requests, bursts, header checks, admin API reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.fake_replies import COMPLETION_TOKENS, PROMPT_TOKENS

PER_REQUEST = PROMPT_TOKENS + COMPLETION_TOKENS  # what the fake upstream reports: 18
CHAT_PATH = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


# requests ----------------------------------------------------------------------------------
def chat_body(content: str = "hi", *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content}],
    }
    if stream:
        body["stream"] = True
    return body


def padded_body(size: int, *, stream: bool = False) -> dict[str, Any]:
    """A chat body of exactly `size` bytes as JSON (the gateway estimates size / 4 tokens)."""
    bare = len(httpx.Request("POST", "http://x", json=chat_body("", stream=stream)).content)
    body = chat_body("x" * (size - bare), stream=stream)
    assert len(httpx.Request("POST", "http://x", json=body).content) == size
    return body


def chat(url: str, secret: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        url + CHAT_PATH,
        json=body or chat_body(),
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )


def burst(urls: list[str], secret: str, count: int) -> list[httpx.Response]:
    """`count` chat requests at once, spread round-robin over `urls`."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        urls[i % len(urls)] + CHAT_PATH,
                        json=chat_body(),
                        headers={"authorization": f"Bearer {secret}"},
                    )
                    for i in range(count)
                )
            )

    return asyncio.run(run())


def seconds(duration: str) -> float:
    """A Go-style duration as x-ratelimit-reset-* carry it (250ms, 6.5s, 1m0s) in seconds."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    total, number = 0.0, ""
    for char in duration:
        if char in "hms":
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
        else:
            number += char
    assert not number, duration
    return total


def assert_request_trio(response: httpx.Response, limit: int, remaining: int) -> None:
    headers = response.headers
    assert headers["x-ratelimit-limit-requests"] == str(limit)
    assert headers["x-ratelimit-remaining-requests"] == str(remaining)
    assert 0 < seconds(headers["x-ratelimit-reset-requests"]) <= 60


def assert_refused(
    response: httpx.Response, code: str = "rate_limit_exceeded", unit: str | None = "requests"
) -> None:
    """A 429 in OpenAI's shape with Retry-After and the x-ratelimit trio of `unit` (if any)."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if code == "insufficient_quota":
        assert error["type"] == "insufficient_quota"
    assert int(response.headers["retry-after"]) >= 1
    for name in ("limit", "remaining", "reset") if unit else ():
        assert f"x-ratelimit-{name}-{unit}" in response.headers, name


def seconds_to_midnight() -> float:
    """Seconds until the next 00:00 UTC, when day quotas reset."""
    return 86_400 - time.time() % 86_400


# operations endpoints ----------------------------------------------------------------------
def key_usage(url: str, admin: str, key_id: str) -> dict[str, Any]:
    response = httpx.get(
        url + "/admin/api/usage",
        params={"key": key_id},
        headers={"authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (report,) = response.json()["keys"]
    assert isinstance(report, dict)
    return report


def limits_status(url: str, admin: str) -> dict[str, Any]:
    response = httpx.get(
        url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    status = response.json()["limits"]
    assert isinstance(status, dict)
    return status


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_applied(url: str, admin: str, commit: str) -> None:
    def applied() -> bool:
        response = httpx.get(
            url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"}, timeout=10
        )
        return bool(response.json()["policy"]["commit"] == commit)

    wait_for(applied, f"policy {commit[:12]} to apply")
