"""Protocol translation: client format -> canonical -> provider format, and back.

``CONVERTERS`` maps a protocol name to its converter module (see ``Converter``); which
protocol a provider type speaks is its adapter's knowledge (gateway.protocols).
``StreamTranslator`` chains SSE parsing, the provider's decoder and the client's encoder
for one streamed answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from gateway.translate import (
    anthropic_messages,
    gemini_content,
    openai_chat,
    openai_responses,
)
from gateway.translate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    FinishReason,
    StreamError,
    StreamEvent,
    ToolCallStart,
    Usage,
)
from gateway.translate.sse import SSEParser
from gateway.translate.tool_names import ToolNames
from gateway.upstream.upstream_errors import client_message

__all__ = [
    "CONVERTERS",
    "Converter",
    "StreamTranslator",
]


class _Decoder(Protocol):
    def feed(self, event: str, data: str) -> list[StreamEvent]: ...
    def close(self) -> list[StreamEvent]: ...


class _Encoder(Protocol):
    def feed(self, ev: StreamEvent) -> bytes: ...
    def close(self) -> bytes: ...


class Converter(Protocol):
    """What every protocol module offers."""

    def request_to_canonical(self, body: dict[str, Any]) -> ChatRequest: ...
    def request_from_canonical(self, req: ChatRequest, upstream_model: str) -> dict[str, Any]: ...
    def response_to_canonical(self, body: dict[str, Any]) -> ChatResponse: ...
    def response_from_canonical(self, resp: ChatResponse, client_model: str) -> dict[str, Any]: ...
    def error_event(self, message: str) -> bytes: ...
    def StreamDecoder(self) -> _Decoder: ...
    def StreamEncoder(self, client_model: str, include_usage: bool = False) -> _Encoder: ...


CONVERTERS: Mapping[str, Converter] = MappingProxyType(
    {
        "openai": openai_chat,
        "anthropic": anthropic_messages,
        "gemini": gemini_content,
        "openai_responses": openai_responses,
    }
)


class StreamTranslator:
    """Provider SSE bytes in, client SSE bytes out, each event as soon as it is complete."""

    __slots__ = ("_decoder", "_encoder", "_names", "_parser", "finish_reason", "usage")

    def __init__(
        self,
        client: str,
        provider: str,
        client_model: str,
        include_usage: bool = False,
        names: ToolNames | None = None,
    ) -> None:
        self._names = names
        """The client's tool names, when the provider got others."""
        self._parser = SSEParser()
        self._decoder = CONVERTERS[provider].StreamDecoder()
        self._encoder = CONVERTERS[client].StreamEncoder(client_model, include_usage)
        self.usage: Usage | None = None
        """The upstream's reported usage, once seen."""
        self.finish_reason: FinishReason | None = None

    def _encode(self, events: list[StreamEvent]) -> bytes:
        out = b""
        for ev in events:
            if isinstance(ev, Usage):
                self.usage = ev
            elif isinstance(ev, Finish):
                self.finish_reason = ev.reason
            elif isinstance(ev, StreamError):  # the upstream's words: summarised, not echoed
                ev = StreamError(client_message(ev.message))
            elif isinstance(ev, ToolCallStart) and self._names is not None:
                ev = self._names.restore_start(ev)
            out += self._encoder.feed(ev)
        return out

    def _decode(self, event: str, data: str) -> list[StreamEvent]:
        try:
            return self._decoder.feed(event, data)
        except (ValueError, KeyError, TypeError, AttributeError):
            return [StreamError("The upstream sent a stream event the gateway cannot read.")]

    def feed(self, chunk: bytes) -> bytes:
        out = b""
        for ev in self._parser.feed(chunk):
            out += self._encode(self._decode(ev.event, ev.data))
        return out

    def close(self) -> bytes:
        """Call once the upstream stream has ended; returns the client stream's tail."""
        out = b""
        for ev in self._parser.close():
            out += self._encode(self._decode(ev.event, ev.data))
        return out + self._encode(self._decoder.close()) + self._encoder.close()
