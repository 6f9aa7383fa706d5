"""What an upstream's error answer means: whose fault it is, and how long to wait.

Read only on the error path (the body of a 4xx/5xx answer), never on a success.
"""

from __future__ import annotations

import email.utils
import time
from enum import Enum

import httpx
import orjson

# Quota errors that are not always a 429: OpenAI's billing quota, Gemini's RESOURCE_EXHAUSTED.
_QUOTA_MARKS = (b"insufficient_quota", b"RESOURCE_EXHAUSTED")


class Verdict(Enum):
    """How the dispatcher treats an upstream error answer."""

    COOL = "cool"
    """Rate limit or quota of this credential: cool it down, try the next one."""
    REMOVE = "remove"
    """The upstream refused the credential itself: take it out, try the next one."""
    RETRY = "retry"
    """The upstream failed (5xx, 408): retry with backoff, then fail over."""
    CLIENT = "client"
    """The client's request is wrong: pass the error back, never retry elsewhere."""


def verdict(status: int, body: bytes) -> Verdict:
    if status in (402, 429) or (status < 500 and any(mark in body for mark in _QUOTA_MARKS)):
        return Verdict.COOL  # 402: credits used up (OpenRouter and other resellers)
    if status in (401, 403) or (status == 400 and b"API_KEY_INVALID" in body):
        return Verdict.REMOVE
    if status >= 500 or status == 408:
        return Verdict.RETRY
    return Verdict.CLIENT


def cooling_reason(status: int, body: bytes) -> str:
    """Why a credential cools, for status and logs (the upstream's words stay out)."""
    if status == 402 or any(mark in body for mark in _QUOTA_MARKS):
        return f"quota or credits used up at the upstream ({status})"
    return f"rate limited by the upstream ({status})"


def retry_after_s(response: httpx.Response, body: bytes) -> float | None:
    """The upstream's own wait: retry-after-ms, Retry-After (seconds or a date), or Gemini's
    RetryInfo.retryDelay in the body."""
    headers = response.headers
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return seconds
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - time.time())
    return _gemini_retry_delay(body)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def _gemini_retry_delay(body: bytes) -> float | None:
    if b"retryDelay" not in body:
        return None
    error = _error_object(body)
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            seconds = _number(delay[:-1])
            if seconds is not None:
                return seconds
    return None


def _error_object(body: bytes) -> object:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, list) and data:  # Gemini streams errors as a one-element array
        data = data[0]
    return data.get("error") if isinstance(data, dict) else None


def upstream_error_message(body: bytes) -> str:
    """The human message of an upstream error body (all three protocols use error.message)."""
    err = _error_object(body)
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    if isinstance(err, str):
        return err
    return "the upstream rejected the request"
