"""A pass-through stream knows where each protocol's answer ends, so its usage is final and
settled before the client sees the end, and a client that then hangs up got all of it."""

from __future__ import annotations

import json

from gateway.errors import Protocol
from gateway.request.passthrough import PassthroughStream


def _event(kind: str, **data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def test_a_responses_stream_ends_at_response_completed_with_its_usage() -> None:
    scanner = PassthroughStream(Protocol.OPENAI, hide_usage_chunk=False, responses=True)
    scanner.feed(_event("response.created", response={"status": "in_progress"}))
    # Generated text that names the event is escaped inside JSON: not an end.
    scanner.feed(_event("response.output_text.delta", delta='say "response.completed"'))
    assert not scanner.ended
    usage = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}
    scanner.feed(_event("response.completed", response={"status": "completed", "usage": usage}))
    assert scanner.ended
    assert (scanner.usage.prompt_tokens, scanner.usage.completion_tokens) == (11, 7)
    scanner.usage_of_unfinished(prompt_estimate=1000)  # a finished answer keeps its usage
    assert (scanner.usage.prompt_tokens, scanner.usage.completion_tokens) == (11, 7)


def test_an_incomplete_responses_answer_is_an_end_too() -> None:
    scanner = PassthroughStream(Protocol.OPENAI, hide_usage_chunk=False, responses=True)
    scanner.feed(_event("response.incomplete", response={"status": "incomplete"}))
    assert scanner.ended


def test_chat_streams_still_end_at_done_only() -> None:
    scanner = PassthroughStream(Protocol.OPENAI, hide_usage_chunk=False)
    scanner.feed(_event("response.completed", response={}))
    assert not scanner.ended
    scanner.feed(b"data: [DONE]\n\n")
    assert scanner.ended
