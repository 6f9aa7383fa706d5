"""Timeouts per provider (first byte, idle, total) and streams that break off midway."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.resilience.conftest import Rig
from tests.support.fake_replies import PROMPT_TOKENS
from tests.support.fake_upstream import Fault


def events_of(text: str) -> list[str]:
    return [e for e in text.replace("\r\n", "\n").split("\n\n") if e.strip()]


def error_of(event: str) -> dict[str, Any]:
    data = next(line[5:].strip() for line in event.splitlines() if line.startswith("data:"))
    parsed: dict[str, Any] = json.loads(data)
    return parsed


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_first_byte_fails_over(r: Rig, stream: bool) -> None:
    r.upstream.fail_next(Fault(delay_s=2.0))
    started = time.monotonic()
    response = r.chat("r-slow", stream=stream)  # first_byte_timeout_s: 0.3
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 1.5
    assert '"error"' not in response.text
    assert len(r.upstream.requests) == 2


def test_slow_chunks_end_the_stream_with_an_error_event(r: Rig) -> None:
    r.upstream.fail_next(Fault(chunk_delay_s=0.8))
    started = time.monotonic()
    response = r.chat("r-idle", stream=True)  # idle_timeout_s: 0.3
    assert response.status_code == 200
    assert time.monotonic() - started < 1.5
    events = events_of(response.text)
    assert "chat.completion.chunk" in events[0]
    error = error_of(events[-1])["error"]
    assert "sent nothing for 0.3 s" in error["message"] and "incomplete" in error["message"]
    assert len(r.upstream.requests) == 1, "a stream that reached the client is not retried"


def test_the_idle_timeout_does_not_cut_a_whole_answer_still_being_made(r: Rig) -> None:
    r.upstream.fail_next(Fault(delay_s=0.6))
    response = r.chat("r-idle")  # not a stream: only first_byte (default timeout_s) applies
    assert response.status_code == 200, response.text


def test_the_total_timeout_bounds_a_stream(r: Rig) -> None:
    r.upstream.fail_next(Fault(chunk_delay_s=0.5))  # 6 chunks: 3 s in all
    started = time.monotonic()
    response = r.chat("r-total", stream=True)  # timeout_s: 0.8 (idle_timeout_s: 5)
    assert response.status_code == 200
    assert time.monotonic() - started < 2.5
    message = error_of(events_of(response.text)[-1])["error"]["message"]
    assert "longer than its 0.8 s timeout" in message


def test_a_stream_reset_after_its_first_byte_is_not_retried(r: Rig) -> None:
    r.upstream.fail_next(Fault(reset_after_chunks=2))
    response = r.chat("r-midstream", stream=True)
    assert response.status_code == 200
    events = events_of(response.text)
    assert len(events) == 3 and "broke off the stream" in events[-1]
    assert len(r.upstream.requests) == 1  # the second target was not tried


def model_usage(r: Rig, route: str) -> dict[str, int]:
    for entry in r.admin_get("/admin/api/usage")["models"]:
        if entry["model"] == route:
            return {k: int(v) for k, v in entry.items() if isinstance(v, int)}
    return {"requests": 0, "errors": 0, "prompt_tokens": 0}


def wait_recorded(r: Rig, route: str) -> dict[str, int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        usage = model_usage(r, route)
        if usage["requests"]:
            return usage
        time.sleep(0.05)
    raise AssertionError(f"no usage recorded for {route}")


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
def test_a_broken_stream_ends_in_the_clients_protocol_and_records_usage_so_far(
    r: Rig, protocol: str
) -> None:
    route = f"r-break-{protocol}"  # an upstream of another protocol that reports usage early
    r.upstream.fail_next(Fault(reset_after_chunks=3))
    response = r.call(protocol, route, stream=True)
    assert response.status_code == 200
    last = events_of(response.text)[-1]
    if protocol == "anthropic":
        assert last.startswith("event: error")
        assert error_of(last)["type"] == "error"
        assert error_of(last)["error"]["type"] == "api_error"
    elif protocol == "gemini":
        assert error_of(last)["error"]["code"] == 502
    else:
        assert error_of(last)["error"]["type"] == "upstream_error"
    assert "broke off the stream" in last
    usage = wait_recorded(r, route)
    assert usage["prompt_tokens"] == PROMPT_TOKENS
    assert usage["errors"] == 1
