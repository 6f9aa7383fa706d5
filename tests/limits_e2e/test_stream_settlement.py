"""Streams that end early settle what was produced (as reported, or one token per event
relayed when the upstream had not reported it yet), and free their slot."""

from __future__ import annotations

import httpx

from tests.limits_e2e.calls import HI, PER_REQUEST, chat_body, wait_for
from tests.limits_e2e.conftest import Served
from tests.support.fake_replies import PROMPT_TOKENS
from tests.support.fake_upstream import FakeUpstream, Fault

STARTED_TOKENS = PROMPT_TOKENS + 1
"""What an Anthropic stream reports in its first event (message_start): input, 1 output."""


def _messages(served: Served, client: httpx.Client, key_id: str) -> httpx.Response:
    """An Anthropic stream (same protocol: pass-through), opened but not read."""
    request = client.build_request(
        "POST",
        served.url + "/v1/messages",
        json={"model": "claude-fake", "max_tokens": 32, "messages": HI, "stream": True},
        headers={"x-api-key": served.secret(key_id), "anthropic-version": "2023-06-01"},
    )
    return client.send(request, stream=True)


def _settled(served: Served, key_id: str) -> dict[str, int]:
    report = served.usage(key_id)
    return {
        "requests": report["tokens_per_day"]["requests"],
        "tokens": report["tokens_per_day"]["used"],
        "in_flight": report["max_concurrency"]["used"],
    }


def test_client_leaving_early_settles_what_was_reported(
    served: Served, upstream: FakeUpstream
) -> None:
    upstream.hold_stream_after_first_chunk = True
    upstream.release_stream.clear()
    with httpx.Client(timeout=30) as client:
        response = _messages(served, client, "leaver")
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert b"message_start" in next(chunks)
        assert _settled(served, "leaver")["in_flight"] == 1
        response.close()  # the client leaves mid-stream
    wait_for(lambda: _settled(served, "leaver")["requests"] == 1, "the stream to settle")
    assert _settled(served, "leaver") == {"requests": 1, "tokens": STARTED_TOKENS, "in_flight": 0}
    wait_for(lambda: upstream.streams_aborted >= 1, "the gateway to close the upstream")
    upstream.hold_stream_after_first_chunk = False
    assert served.chat("leaver").status_code == 200  # its slot is free again
    assert _settled(served, "leaver")["tokens"] == STARTED_TOKENS + PER_REQUEST


def test_upstream_breaking_mid_stream_settles_what_was_reported(
    served: Served, upstream: FakeUpstream
) -> None:
    upstream.fail_next(Fault(reset_after_chunks=3))
    with httpx.Client(timeout=30) as client:
        response = _messages(served, client, "broken")
        assert response.status_code == 200
        body = response.read()
    assert b"message_start" in body and b"message_stop" not in body
    assert b"event: error" in body  # the client is told the answer is incomplete
    # Reported: 11 prompt and 1 output token; relayed: 3 events, so 3 output tokens count.
    relayed = PROMPT_TOKENS + 3
    assert _settled(served, "broken") == {"requests": 1, "tokens": relayed, "in_flight": 0}
    assert served.chat("broken").status_code == 200


def test_openai_stream_left_early_frees_its_slot(served: Served, upstream: FakeUpstream) -> None:
    upstream.hold_stream_after_first_chunk = True
    upstream.release_stream.clear()
    with httpx.Client(timeout=30) as client:
        request = client.build_request(
            "POST",
            served.url + "/v1/chat/completions",
            json=chat_body(stream=True),
            headers={"authorization": f"Bearer {served.secret('openai-leaver')}"},
        )
        response = client.send(request, stream=True)
        chunks = response.iter_raw()
        assert b"chat.completion.chunk" in next(chunks)
        response.close()
    wait_for(lambda: _settled(served, "openai-leaver")["requests"] == 1, "the stream to settle")
    # An OpenAI stream reports usage only in its last chunk, which never came: the gateway
    # counts the prompt as estimated (a quarter of the body's bytes) and one token per event.
    produced = len(request.content) // 4 + 1
    assert _settled(served, "openai-leaver") == {"requests": 1, "tokens": produced, "in_flight": 0}
    upstream.hold_stream_after_first_chunk = False
    assert served.chat("openai-leaver").status_code == 200
