"""Streams are relayed as they arrive, and a client that leaves closes the upstream call."""

from __future__ import annotations

import time

import httpx

from tests.conftest import Deployment
from tests.support.fake_upstream import Fault

STREAM = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def headers(d: Deployment) -> dict[str, str]:
    return {"authorization": f"Bearer {d.keys['alice']}"}


def test_first_chunk_reaches_the_client_before_the_upstream_finished(
    deployment: Deployment,
) -> None:
    upstream = deployment.upstream
    upstream.hold_stream_after_first_chunk = True
    with httpx.stream(
        "POST",
        deployment.gateway.url + "/v1/chat/completions",
        json=STREAM,
        headers=headers(deployment),
        timeout=10,
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        assert b"chat.completion.chunk" in first
        assert upstream.streams_completed == 0, "the upstream is still holding its stream"
        upstream.release_stream.set()
        rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")
    assert upstream.streams_completed == 1


def test_client_disconnect_closes_the_upstream_connection(deployment: Deployment) -> None:
    upstream = deployment.upstream
    upstream.hold_stream_after_first_chunk = True
    with httpx.stream(
        "POST",
        deployment.gateway.url + "/v1/chat/completions",
        json=STREAM,
        headers=headers(deployment),
        timeout=10,
    ) as response:
        next(response.iter_raw())
    deadline = time.monotonic() + 5
    while upstream.streams_aborted == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.streams_aborted == 1
    assert upstream.streams_completed == 0


def test_upstream_reset_mid_stream_ends_with_an_error_event(deployment: Deployment) -> None:
    deployment.upstream.fail_next(Fault(reset_after_chunks=3))
    response = httpx.post(
        deployment.gateway.url + "/v1/chat/completions",
        json=STREAM,
        headers=headers(deployment),
        timeout=10,
    )
    assert response.status_code == 200
    events = [e for e in response.text.split("\n\n") if e]
    assert len(events) == 4
    assert '"error"' in events[-1] and "broke off" in events[-1]
    assert "[DONE]" not in response.text
