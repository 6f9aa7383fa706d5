"""What an upstream's error answer means: whose fault it is, how long to wait, and what
of its words a client may see.

Read only on the error path (the body of a 4xx/5xx answer), never on a success. An upstream
is not trusted to keep its own secrets: its message may name its URL, its hosts or a key, so
a client sees it summarised (`client_message`), and its `Retry-After` is clamped.
"""

from __future__ import annotations

import email.utils
import re
import time
from enum import Enum

import httpx
import orjson

from gateway.logs import redact

# Quota errors that are not always a 429: OpenAI's billing quota, Gemini's RESOURCE_EXHAUSTED.
_QUOTA_CODES = frozenset({"insufficient_quota", "RESOURCE_EXHAUSTED"})
_BAD_KEY_CODE = "API_KEY_INVALID"  # Gemini's reason for a 400 that refuses the key
_CODE_MARKS = tuple(code.encode() for code in (*_QUOTA_CODES, _BAD_KEY_CODE))

MAX_ERROR_BODY = 256 * 1024
"""Bytes of an upstream error answer the gateway reads; the rest is never looked at."""
MAX_CLIENT_MESSAGE = 500
"""Characters of an upstream's error message a client sees."""
MAX_LOGGED_MESSAGE = 4000
"""Characters of it the debug log keeps."""


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
    codes = error_codes(body) if status < 500 else frozenset()
    if status in (402, 429) or codes & _QUOTA_CODES:
        return Verdict.COOL  # 402: credits used up (OpenRouter and other resellers)
    if status in (401, 403) or (status == 400 and _BAD_KEY_CODE in codes):
        return Verdict.REMOVE
    if status >= 500 or status == 408:
        return Verdict.RETRY
    return Verdict.CLIENT


def cooling_reason(status: int, body: bytes) -> str:
    """Why a credential cools, for status and logs (the upstream's words stay out)."""
    if status == 402 or error_codes(body) & _QUOTA_CODES:
        return f"quota or credits used up at the upstream ({status})"
    return f"rate limited by the upstream ({status})"


def cooldown_s(response: httpx.Response, body: bytes, default_s: float, max_s: float) -> float:
    """How long a rate-limited credential sits out: the upstream's own wait, at most `max_s`
    (an upstream must not bench a credential for years), else `default_s`."""
    wait = retry_after_s(response, body)
    return default_s if wait is None else min(wait, max_s)


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


def error_codes(body: bytes) -> frozenset[str]:
    """The upstream's own codes for an error: OpenAI's error.type and error.code, Gemini's
    error.status and the reasons in its details. Never words of its message: an upstream
    quotes the client there ("Invalid value: 'insufficient_quota'"), and one client's
    request must not bench a credential for everyone."""
    if not any(mark in body for mark in _CODE_MARKS):  # the usual error: nothing to parse
        return frozenset()
    err = _error_object(body)
    if not isinstance(err, dict):
        return frozenset()
    details = err.get("details")
    reasons = (
        [d.get("reason") for d in details if isinstance(d, dict)]
        if isinstance(details, list)
        else []
    )
    found = (err.get("type"), err.get("code"), err.get("status"), *reasons)
    return frozenset(code for code in found if isinstance(code, str))


def upstream_error_message(body: bytes) -> str:
    """The human message of an upstream error body (all three protocols use error.message),
    as the upstream wrote it: summarise it (`client_message`) before anyone sees it."""
    err = _error_object(body)
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    if isinstance(err, str):
        return err
    return "the upstream rejected the request"


# Where an upstream lives, and long opaque runs (tokens, signatures, ids that may be secret).
# Key shapes (sk-..., AIza..., Bearer ...) are the log redactor's: one list for both.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s\"'<>()\[\]{}]+")
_EMAIL_OR_USERINFO = re.compile(r"(?<![\w.+-])[\w.+-]+@(?=[\w-])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])")
_IPV6 = re.compile(
    r"\[?(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])\]?(?::\d{1,5})?"
)
# A dotted name ending in a top-level domain hosts use (not `messages.0.content`, which is a
# JSON path an upstream's message needs), or any name with a port.
_TLDS = (
    "com|net|org|io|ai|dev|app|cloud|co|us|uk|de|eu|fr|nl|jp|cn|in|ru|br|au|ca|ch|se|"
    "info|biz|xyz|tech|site|online|internal|local|localhost|lan|corp|home|intranet|svc|"
    "cluster|test|example|invalid|arpa"
)
_HOST = re.compile(
    r"(?<![\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:" + _TLDS + r")"
    r"(?::\d{1,5})?(?![\w-])|(?<![\w.-])localhost(?::\d{1,5})?(?![\w-])"
    r"|(?<![\w.-])[A-Za-z][\w.-]*:\d{2,5}(?![\w.-])",
    re.IGNORECASE,
)
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def client_message(message: str, limit: int = MAX_CLIENT_MESSAGE) -> str:
    """An upstream's error message fit for a client (or a log line): URLs, hosts, IPs and
    anything shaped like a key masked, control characters gone, at most `limit` characters.

    What tells the caller what was wrong stays readable ("prompt is too long: 210000 tokens
    > 200000 maximum", "messages.0.content: ...").
    """
    text = message[: limit * 4]  # a generous first cut bounds the masks' work
    text = _CONTROL.sub(" ", text)
    text = redact(text)  # key shapes first, while they are whole
    text = _URL.sub("[url]", text)
    text = _EMAIL_OR_USERINFO.sub("[user]@", text)
    text = _IPV4.sub("[ip]", text)
    text = _IPV6.sub(_masked_ipv6, text)
    text = _HOST.sub("[host]", text)
    text = _OPAQUE_RUN.sub(_masked_run, text)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "the upstream rejected the request"


def _masked_ipv6(match: re.Match[str]) -> str:
    # "12:30:45" is a time; an address has "::" or all its 7 colons.
    found = match.group(0)
    return "[ip]" if "::" in found or found.count(":") >= 7 else found


def _masked_run(match: re.Match[str]) -> str:
    run = match.group(0)
    # A long word of letters (an identifier) stays; a run with digits is a token or a hash.
    return "[redacted]" if any(c.isdigit() for c in run) else run
