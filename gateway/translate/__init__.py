"""Protocol translation: client format -> canonical -> provider format, and back.

``CONVERTERS`` maps a protocol name to its converter module (see ``Converter``); which
protocol a provider type speaks is its adapter's knowledge (gateway.protocols).
``StreamTranslator`` chains SSE parsing, the provider's decoder and the client's encoder
for one streamed answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import orjson

from gateway.translate import (
    anthropic_messages,
    bedrock_converse,
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
from gateway.translate.sse import SSEEvent, SSEParser
from gateway.translate.tool_names import ToolNames
from gateway.upstream.upstream_errors import client_message
from gateway.vocabulary import Op
from gateway.vocabulary import Protocol as Vocabulary

__all__ = [
    "CONVERTERS",
    "PROVIDER_CONVERTERS",
    "Converter",
    "ProviderSide",
    "StreamParser",
    "StreamTranslator",
    "dialect",
]


class StreamParser(Protocol):
    """An upstream stream's framing: bytes in, complete events out (SSE, or AWS event
    streams); keeps only the unfinished tail between calls."""

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...
    def close(self) -> list[SSEEvent]: ...


class _Decoder(Protocol):
    def feed(self, event: str, data: str) -> list[StreamEvent]: ...
    def close(self) -> list[StreamEvent]: ...


class _Encoder(Protocol):
    def feed(self, ev: StreamEvent) -> bytes: ...
    def close(self) -> bytes: ...


class ProviderSide(Protocol):
    """What a protocol module offers to reach its providers."""

    def request_from_canonical(self, req: ChatRequest, upstream_model: str) -> dict[str, Any]: ...
    def response_to_canonical(self, body: dict[str, Any]) -> ChatResponse: ...
    def StreamDecoder(self) -> _Decoder: ...


class Converter(ProviderSide, Protocol):
    """What a protocol module offers that clients speak too (every one but Bedrock's)."""

    def request_to_canonical(self, body: dict[str, Any]) -> ChatRequest: ...
    def response_from_canonical(self, resp: ChatResponse, client_model: str) -> dict[str, Any]: ...
    def error_event(self, message: str) -> bytes: ...
    def StreamEncoder(self, client_model: str, include_usage: bool = False) -> _Encoder: ...


def dialect(protocol: Vocabulary, op: Op) -> str:
    """The converter that speaks `op` in `protocol`: the Responses API is a dialect of
    OpenAI's protocol with a converter of its own."""
    return "openai_responses" if op is Op.RESPONSES else protocol.value


CONVERTERS: Mapping[str, Converter] = MappingProxyType(
    {
        "openai": openai_chat,
        "anthropic": anthropic_messages,
        "gemini": gemini_content,
        "openai_responses": openai_responses,
    }
)
PROVIDER_CONVERTERS: Mapping[str, ProviderSide] = MappingProxyType(
    {**CONVERTERS, "bedrock": bedrock_converse}
)
"""Every dialect the gateway can send upstream: the client dialects and Bedrock's."""


class StreamTranslator:
    """Provider SSE bytes in, client SSE bytes out, each event as soon as it is complete."""

    __slots__ = (
        "_decoder",
        "_encoder",
        "_names",
        "_parser",
        "_read_usage",
        "events",
        "finish_reason",
        "usage",
    )

    def __init__(
        self,
        client: str,
        provider: str,
        client_model: str,
        include_usage: bool = False,
        names: ToolNames | None = None,
        parser: StreamParser | None = None,
        read_usage: Callable[[Any], None] | None = None,
    ) -> None:
        self._names = names
        """The client's tool names, when the provider got others."""
        self._parser: StreamParser = parser if parser is not None else SSEParser()
        self.events = 0
        """Upstream events read: a floor for the tokens of an answer cut short."""
        self._read_usage = read_usage
        """Billing's reader of the provider's usage, given each event that mentions usage
        (as it comes: an answer cut short still counts what was reported before)."""
        self._decoder = PROVIDER_CONVERTERS[provider].StreamDecoder()
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
            self.events += 1
            self._bill(ev.data)
            out += self._encode(self._decode(ev.event, ev.data))
        return out

    def _bill(self, data: str) -> None:
        if self._read_usage is not None and '"usage' in data:  # usage, usageMetadata
            with contextlib.suppress(orjson.JSONDecodeError):  # the decoder reports it
                self._read_usage(orjson.loads(data))

    def close(self) -> bytes:
        """Call once the upstream stream has ended; returns the client stream's tail."""
        out = b""
        for ev in self._parser.close():
            self._bill(ev.data)
            out += self._encode(self._decode(ev.event, ev.data))
        return out + self._encode(self._decoder.close()) + self._encoder.close()
