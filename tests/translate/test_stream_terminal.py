"""Every client encoder keeps its terminal event for close(), the upstream's end: the gateway
settles the final usage before the client can see the end and leave (issue 13)."""

from __future__ import annotations

import pytest

from gateway.translate import CONVERTERS
from gateway.translate.canonical import Finish, Start, TextDelta, Usage

TERMINAL = {
    "openai": b"data: [DONE]",
    "anthropic": b"event: message_stop",
    "openai_responses": b"event: response.completed",
    "gemini": b'"finishReason"',
}
FINAL_USAGE = {  # how each protocol writes 7 completion tokens
    "openai": b'"completion_tokens":7',
    "anthropic": b'"output_tokens":7',
    "openai_responses": b'"output_tokens":7',
    "gemini": b'"candidatesTokenCount":7',
}


@pytest.mark.parametrize("client", TERMINAL)
def test_the_terminal_event_waits_for_the_upstreams_end_with_the_latest_usage(
    client: str,
) -> None:
    encoder = CONVERTERS[client].StreamEncoder("m", include_usage=True)
    fed = b""
    # A running count first (some servers report usage in every chunk), the final one last.
    for ev in (Start("id1", "m"), TextDelta("hi"), Usage(11, 1, 12), Finish("stop")):
        fed += encoder.feed(ev)
    fed += encoder.feed(Usage(11, 7, 18))
    assert TERMINAL[client] not in fed
    tail = encoder.close()
    assert TERMINAL[client] in tail
    assert FINAL_USAGE[client] in tail and b'"completion_tokens":1,' not in fed + tail
