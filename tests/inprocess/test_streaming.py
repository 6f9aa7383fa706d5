"""Streams: the same protocol passes the upstream's bytes through; another is translated,
and both settle the usage the upstream reported."""

from __future__ import annotations

import json

from tests.inprocess.calls import GEMINI_HELLO, HELLO, bearer, key_totals, message
from tests.inprocess.harness import InProcessGateway
from tests.inprocess.upstream import ScriptedUpstream
from tests.support import fake_replies as replies


async def test_same_protocol_stream_is_the_upstreams_bytes(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    received = []
    async with gateway.client.stream(
        "POST", "/v1/chat/completions", headers=bearer(secrets["alice"]), json=body
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        received = [chunk async for chunk in answer.aiter_bytes()]
    [seen] = upstream.seen
    assert seen.body is not None and seen.body["model"] == "upstream-mini"
    sent = replies.reply_for(seen.path, seen.body, upstream.chunks).events
    assert sent is not None
    assert b"".join(received) == b"".join(sent)
    totals = await key_totals(gateway, secrets["admin"], "alice")
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (11, 7)


async def test_usage_the_gateway_asked_for_is_hidden_from_a_client_that_did_not(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    answer = await gateway.client.post(
        "/v1/chat/completions", headers=bearer(secrets["alice"]), json=body
    )
    assert answer.status_code == 200
    assert upstream.seen[0].body is not None
    assert upstream.seen[0].body["stream_options"] == {"include_usage": True}
    assert '"usage": {' not in answer.text
    assert answer.text.endswith("data: [DONE]\n\n")
    totals = await key_totals(gateway, secrets["admin"], "alice")
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (11, 7)


def _sse_events(text: str) -> list[tuple[str | None, dict[str, object] | str]]:
    """(event name, data) of each event; lines may end in CRLF (Gemini's framing) or LF."""
    events: list[tuple[str | None, dict[str, object] | str]] = []
    name = None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
            events.append((name, json.loads(data) if data.startswith("{") else data))
            name = None
    return events


async def test_anthropic_client_streams_from_an_openai_provider(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    answer = await message(gateway, secrets["alice"], "gpt-4o-mini", stream=True)
    assert answer.status_code == 200, answer.text
    assert upstream.hosts() == ["primary.test"]
    events = _sse_events(answer.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    text = "".join(
        str(data["delta"]["text"])  # type: ignore[index]
        for name, data in events
        if name == "content_block_delta" and isinstance(data, dict)
    )
    assert text == "".join(replies.text_of(upstream.chunks))
    [delta] = [data for name, data in events if name == "message_delta"]
    assert isinstance(delta, dict) and delta["usage"]["output_tokens"] == 7  # type: ignore[index]


async def test_gemini_client_streams_from_an_anthropic_provider_as_sse_and_as_array(
    gateway: InProcessGateway, secrets: dict[str, str], upstream: ScriptedUpstream
) -> None:
    key = {"x-goog-api-key": secrets["alice"]}
    path = "/v1beta/models/claude-sonnet:streamGenerateContent"
    sse = await gateway.client.post(path, params={"alt": "sse"}, headers=key, json=GEMINI_HELLO)
    assert sse.status_code == 200, sse.text
    chunks = [data for _, data in _sse_events(sse.text)]
    assert all(isinstance(chunk, dict) for chunk in chunks)
    array = await gateway.client.post(path, headers=key, json=GEMINI_HELLO)
    assert array.status_code == 200, array.text
    assert array.headers["content-type"].startswith("application/json")
    assert array.json() == chunks  # the same chunks, framed as one JSON array
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 7  # type: ignore[index]
    assert upstream.hosts() == ["claude.test", "claude.test"]
