"""Stage ④ and ⑥ for cross-protocol calls: one request's translation, both ways.

Pass-through never comes here. A Translation is made per target (failover may cross
protocols), converts the client's body to the provider's, and the provider's answer or
stream back to the client's protocol.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import BadRequest, Protocol, UnsupportedFeature, UpstreamFailed
from gateway.translate import CONVERTERS, Converter, StreamTranslator, embeddings
from gateway.upstream.endpoints import Op


def _client_protocol(protocol: Protocol, op: Op) -> str:
    return "openai_responses" if op is Op.RESPONSES else protocol.value


class Translation:
    """Client body -> provider body; provider answer (body or stream) -> client answer."""

    def __init__(
        self, client: str, provider: Protocol, op: Op, body: dict[str, Any], stream: bool
    ) -> None:
        self.client = client
        self.provider = provider
        self.op = op
        self.body = body
        self.stream = stream
        self._stream: StreamTranslator | None = None

    @classmethod
    def start(
        cls, protocol: Protocol, provider: Protocol, op: Op, body: dict[str, Any], stream: bool
    ) -> Translation:
        if op is Op.COMPLETIONS:
            raise UnsupportedFeature(
                "/v1/completions reaches only OpenAI-type providers; this route's provider "
                "speaks another protocol. Use /v1/chat/completions."
            )
        return cls(_client_protocol(protocol, op), provider, op, body, stream)

    @property
    def _client_converter(self) -> Converter:
        return CONVERTERS[self.client]

    @property
    def _provider_converter(self) -> Converter:
        return CONVERTERS[self.provider.value]

    def upstream_body(self, upstream_model: str) -> bytes:
        if self.op is Op.EMBEDDINGS:
            return orjson.dumps(self._embeddings_request(upstream_model))
        request = self._client_converter.request_to_canonical(self.body)
        # Gemini clients say "stream" in the URL, not the body: the pipeline's word counts.
        request.stream = self.stream
        provider_body = self._provider_converter.request_from_canonical(request, upstream_model)
        return orjson.dumps(provider_body)

    def client_body(self, upstream: Any, client_model: str) -> bytes:
        if self.op is Op.EMBEDDINGS:
            return orjson.dumps(self._embeddings_response(upstream, client_model))
        response = self._provider_converter.response_to_canonical(upstream)
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
                self.client, self.provider.value, client_model, include_usage
            )
        return self._stream

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


def gemini_batch_request(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Gemini client's embedContent or batchEmbedContents body, as the upstream's batch.

    Each batch entry names its model, which must be the upstream's, not the client's.
    """
    model = upstream_model if upstream_model.startswith("models/") else "models/" + upstream_model
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
