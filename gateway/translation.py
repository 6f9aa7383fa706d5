"""Stage ④ and ⑥ for cross-protocol calls: one request's translation, both ways.

Pass-through never comes here. A Translation is made per target (failover may cross
protocols), converts the client's body to the provider's, and the provider's answer or
stream back to the client's protocol. It keeps the hints the provider's protocol could not
carry (``dropped``), or refuses them on a strict route (see gateway.translate.policy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson

from gateway.errors import BadRequest, GatewayError, Protocol, UnsupportedFeature, UpstreamFailed
from gateway.protocols.gemini import GEMINI
from gateway.translate import CONVERTERS, Converter, StreamTranslator, embeddings, policy
from gateway.translate.openai_responses_tools import tool_names
from gateway.translate.tool_names import ToolNames
from gateway.vocabulary import Op

LARGE_BODY_BYTES = 16 * 1024
"""Client bodies above this size are translated on a worker thread (`TranslatedAhead`).

Translation is pure Python, linear in the body but up to about 150 ns a byte (a 5 MiB body
of one-word messages takes 0.8 s): on the loop it would hold every other client up that
long. Below this size it costs the loop a few milliseconds at most."""
SWITCH_INTERVAL_S = 0.001
"""The interpreter's thread switch interval in a serving process: how soon a translating
thread hands the interpreter back to the loop. At Python's default (5 ms), two large
translations in flight added 20 to 45 ms to a small request's median latency; at 1 ms,
8 to 18 ms (tests/security/test_loop_fairness.py)."""
TargetKey = tuple[Protocol, str]
"""A target as translation sees it: its provider's protocol and its upstream model."""


def _client_protocol(protocol: Protocol, op: Op) -> str:
    return "openai_responses" if op is Op.RESPONSES else protocol.value


class Translation:
    """Client body -> provider body; provider answer (body or stream) -> client answer."""

    def __init__(
        self,
        client: str,
        provider: Protocol,
        op: Op,
        body: dict[str, Any],
        stream: bool,
        strict: bool = False,
    ) -> None:
        self.client = client
        self.provider = provider
        self.op = op
        self.body = body
        self.stream = stream
        self.strict = strict
        """The route's `translation: strict`: a hint the provider lacks is refused."""
        self.dropped: frozenset[str] = frozenset()
        """Hints of the client's the provider's protocol cannot carry, as the client spelled
        them; known once `upstream_body` has run."""
        self._stream: StreamTranslator | None = None

    @classmethod
    def start(
        cls,
        protocol: Protocol,
        provider: Protocol,
        op: Op,
        body: dict[str, Any],
        stream: bool,
        strict: bool = False,
    ) -> Translation:
        if op is Op.COMPLETIONS:
            raise UnsupportedFeature(
                "/v1/completions reaches only OpenAI-type providers; this route's provider "
                "speaks another protocol. Use /v1/chat/completions."
            )
        return cls(_client_protocol(protocol, op), provider, op, body, stream, strict)

    @property
    def _client_converter(self) -> Converter:
        return CONVERTERS[self.client]

    @property
    def _provider_converter(self) -> Converter:
        return CONVERTERS[self.provider.value]

    def upstream_body(self, upstream_model: str) -> bytes:
        try:
            if self.op is Op.EMBEDDINGS:
                return dump_body(self._embeddings_request(upstream_model))
            request = self._client_converter.request_to_canonical(self.body)
            # Gemini clients say "stream" in the URL, not the body: the pipeline's word counts.
            request.stream = self.stream
            provider_body = self._provider_converter.request_from_canonical(request, upstream_model)
        except RecursionError:  # str() of a value nested ~1000 deep
            raise _too_deep() from None
        if self.strict:
            policy.refuse_hints(request.dropped)
        self.dropped = frozenset(request.dropped)
        return dump_body(provider_body)

    def client_body(self, upstream: Any, client_model: str) -> bytes:
        if self.op is Op.EMBEDDINGS:
            return orjson.dumps(self._embeddings_response(upstream, client_model))
        response = self._provider_converter.response_to_canonical(upstream)
        names = self._tool_names()
        if names is not None:
            names.restore_parts(response.parts)
        return orjson.dumps(self._client_converter.response_from_canonical(response, client_model))

    def client_stream_bytes(self, upstream_events: bytes, client_model: str) -> bytes:
        """Complete upstream SSE events in, the client's SSE bytes out."""
        return self._translator(client_model).feed(upstream_events)

    def client_stream_end(self, client_model: str) -> bytes:
        return self._translator(client_model).close()

    def _translator(self, client_model: str) -> StreamTranslator:
        if self._stream is None:
            options = self.body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            self._stream = StreamTranslator(
                self.client, self.provider.value, client_model, include_usage, self._tool_names()
            )
        return self._stream

    def _tool_names(self) -> ToolNames | None:
        """The client's own tool names, when the provider got others (translate.tool_names)."""
        if self.client != "openai_responses":
            return None
        names = tool_names(self.body)
        return names if names.changes_any else None

    def _embeddings_request(self, upstream_model: str) -> dict[str, Any]:
        if self.client == "openai" and self.provider is Protocol.GEMINI:
            return embeddings.openai_request_to_gemini(self.body, upstream_model)
        if self.client == "gemini" and self.provider is Protocol.OPENAI:
            return embeddings.gemini_request_to_openai(self.body, upstream_model)
        if self.client == "gemini" and self.provider is Protocol.GEMINI:
            return gemini_batch_request(self.body, upstream_model)
        raise UnsupportedFeature(
            f"Embeddings cannot go from {self.client} clients to {self.provider.value} providers."
        )

    def _embeddings_response(self, upstream: Any, client_model: str) -> dict[str, Any]:
        if self.client == "openai":
            encoding = str(self.body.get("encoding_format") or "float")
            texts = embeddings.openai_inputs(self.body)
            return embeddings.gemini_response_to_openai(upstream, client_model, texts, encoding)
        batch = "requests" in self.body
        if self.provider is Protocol.GEMINI:
            return upstream if batch else gemini_single_response(upstream)
        return embeddings.openai_response_to_gemini(upstream, batch=batch)


def dump_body(body: dict[str, Any]) -> bytes:
    """An upstream body as JSON; orjson writes 254 levels at most (it reads 1024)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise _too_deep() from None


def _too_deep() -> BadRequest:
    return BadRequest(
        "The request nests values too deeply for the gateway to pass on. "
        "Send values nested at most 200 levels deep."
    )


class TranslatedAhead:
    """Upstream bodies of a large request, translated on a worker thread before the targets
    are tried; an error is kept for its target, since failover may still succeed elsewhere."""

    def __init__(self) -> None:
        self._ready: dict[TargetKey, tuple[bytes, frozenset[str]] | GatewayError] = {}

    async def translate(
        self,
        protocol: Protocol,
        op: Op,
        body: dict[str, Any],
        stream: bool,
        targets: Iterable[TargetKey],
        strict: bool = False,
    ) -> None:
        def work() -> dict[TargetKey, tuple[bytes, frozenset[str]] | GatewayError]:
            ready: dict[TargetKey, tuple[bytes, frozenset[str]] | GatewayError] = {}
            for provider, model in targets:
                try:
                    translation = Translation.start(protocol, provider, op, body, stream, strict)
                    upstream = translation.upstream_body(model)
                    ready[provider, model] = (upstream, translation.dropped)
                except GatewayError as err:
                    ready[provider, model] = err
            return ready

        self._ready = await asyncio.to_thread(work)

    def upstream_body(self, translation: Translation, upstream_model: str) -> bytes:
        found = self._ready.get((translation.provider, upstream_model))
        if found is None:
            return translation.upstream_body(upstream_model)
        if isinstance(found, GatewayError):
            raise found
        upstream, translation.dropped = found
        return upstream


def gemini_batch_request(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Gemini client's embedContent or batchEmbedContents body, as the upstream's batch.

    Each batch entry names its model, which must be the upstream's, not the client's.
    """
    model = GEMINI.body_model(upstream_model)
    if "requests" not in body:
        return {"requests": [{**body, "model": model}]}
    requests = body["requests"]
    if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
        raise BadRequest("'requests' must be an array of objects.", param="requests")
    return {"requests": [{**r, "model": model} for r in requests]}


def gemini_single_response(upstream: Any) -> dict[str, Any]:
    """A batchEmbedContents answer of one entry, as embedContent's answer."""
    found = upstream.get("embeddings") if isinstance(upstream, dict) else None
    if not isinstance(found, list) or not found:
        raise UpstreamFailed("The upstream's embedding answer had no embedding in it.")
    return {"embedding": found[0]}
