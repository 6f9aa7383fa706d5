"""The converter registry and the stream translator that chains parser, decoder and encoder."""

from __future__ import annotations

import json

import pytest

from gateway.translate import CONVERTERS, StreamTranslator
from gateway.translate.sse import SSEParser
from tests.translate.fixtures import STREAMS, load_bytes


def test_registry_has_every_protocol_with_the_whole_interface() -> None:
    assert set(CONVERTERS) == {"openai", "anthropic", "gemini", "openai_responses"}
    for module in CONVERTERS.values():
        for name in (
            "request_to_canonical",
            "request_from_canonical",
            "response_to_canonical",
            "response_from_canonical",
            "StreamDecoder",
            "StreamEncoder",
            "error_event",
        ):
            assert callable(getattr(module, name))
    with pytest.raises(TypeError):
        CONVERTERS["x"] = CONVERTERS["openai"]  # type: ignore[index]


def _first_text(protocol: str) -> str:
    return {
        "openai": "Hello",
        "anthropic": "Hello",
        "gemini": "Hello",
        "openai_responses": "Hi",
    }[protocol]


@pytest.mark.parametrize("client", list(CONVERTERS))
@pytest.mark.parametrize("provider", list(CONVERTERS))
def test_each_event_goes_out_as_soon_as_it_is_complete(provider: str, client: str) -> None:
    raw = load_bytes(STREAMS[provider][0])
    events = raw.replace(b"\r\n", b"\n").split(b"\n\n")
    translator = StreamTranslator(client, provider, "route")
    word = _first_text(provider).encode()
    sent = b""
    for block in events:
        sent += translator.feed(block + b"\n\n")
        if word in block:
            # the event that carried the first words has already been translated
            assert word in sent
            break
    else:
        pytest.fail("fixture has no text")


def test_unreadable_upstream_event_becomes_a_client_error_event() -> None:
    translator = StreamTranslator("anthropic", "openai", "route")
    out = translator.feed(b"data: {not json\n\n")
    events = SSEParser().feed(out)
    assert events[-1].event == "error"
    assert "cannot read" in json.loads(events[-1].data)["error"]["message"]
    assert translator.feed(b'data: {"choices": []}\n\n') == b""
    assert translator.close() == b""


def test_close_on_a_truncated_stream_tells_the_client() -> None:
    raw = load_bytes("anthropic/stream_text.sse")
    cut = raw[: raw.index(b"event: message_delta")]
    translator = StreamTranslator("openai", "anthropic", "route")
    out = translator.feed(cut) + translator.close()
    last = SSEParser().feed(out)[-1]
    assert "ended before" in json.loads(last.data)["error"]["message"]
    assert translator.finish_reason is None


def test_usage_is_exposed_for_settling_even_when_hidden_from_the_client() -> None:
    raw = load_bytes("openai/chat_stream_text.sse")
    translator = StreamTranslator("openai", "openai", "route", include_usage=False)
    out = translator.feed(raw) + translator.close()
    assert b'"usage"' not in out
    assert translator.usage is not None and translator.usage.total_tokens == 29
