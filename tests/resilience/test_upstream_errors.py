"""Classifying upstream error answers, and reading how long the upstream wants us to wait."""

from __future__ import annotations

import email.utils
import time

import httpx
import orjson
import pytest

from gateway.upstream.upstream_errors import Verdict, retry_after_s, verdict


def body(data: object) -> bytes:
    return orjson.dumps(data)


OPENAI_QUOTA = body(
    {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}
)
GEMINI_EXHAUSTED = body(
    {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
        }
    }
)
GEMINI_BAD_KEY = body(
    {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
)


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (429, b"{}", Verdict.COOL),
        (429, OPENAI_QUOTA, Verdict.COOL),
        (429, GEMINI_EXHAUSTED, Verdict.COOL),
        (402, b"{}", Verdict.COOL),
        (403, GEMINI_EXHAUSTED, Verdict.COOL),
        (401, b"{}", Verdict.REMOVE),
        (403, b"{}", Verdict.REMOVE),
        (400, GEMINI_BAD_KEY, Verdict.REMOVE),
        (500, b"{}", Verdict.RETRY),
        (503, GEMINI_EXHAUSTED, Verdict.RETRY),
        (529, b"{}", Verdict.RETRY),
        (408, b"{}", Verdict.RETRY),
        (400, body({"error": {"message": "max_tokens too large"}}), Verdict.CLIENT),
        (404, b"{}", Verdict.CLIENT),
        (422, b"{}", Verdict.CLIENT),
    ],
)
def test_verdicts(status: int, content: bytes, expected: Verdict) -> None:
    assert verdict(status, content) is expected


def answer(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_retry_after_in_seconds_milliseconds_or_a_date() -> None:
    assert retry_after_s(answer({"retry-after": "7"}), b"") == 7
    assert retry_after_s(answer({"retry-after": "1.5"}), b"") == 1.5
    assert retry_after_s(answer({"retry-after-ms": "2500", "retry-after": "9"}), b"") == 2.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = retry_after_s(answer({"retry-after": date}), b"")
    assert wait is not None and 28 <= wait <= 30


def test_gemini_retry_delay_in_the_body() -> None:
    assert retry_after_s(answer({}), GEMINI_EXHAUSTED) == 17
    assert retry_after_s(answer({"retry-after": "3"}), GEMINI_EXHAUSTED) == 3


@pytest.mark.parametrize("value", ["soon", "-4", "nan", "inf", ""])
def test_unreadable_waits_are_none(value: str) -> None:
    assert retry_after_s(answer({"retry-after": value}), b"not json") is None
