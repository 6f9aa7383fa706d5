"""Embeddings: OpenAI ``/v1/embeddings`` <-> Gemini ``embedContent`` / ``batchEmbedContents``.

OpenAI -> Gemini always uses ``batchEmbedContents`` (one request per input string).
Gemini reports no token usage for embeddings, so OpenAI-shaped answers carry an
estimate (one token per 4 characters, at least 1 per input) that quotas can count.
Token-array inputs cannot be translated (Gemini takes text only). A Gemini client's
``embedContent`` goes upstream as ``batchEmbedContents`` too, so that one upstream path serves
both Gemini methods (`EmbeddingsTranslation` is all of this, seen from the request path).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from gateway.errors import BadRequest, UnsupportedFeature, UpstreamFailed
from gateway.protocols.gemini import GEMINI
from gateway.translate.wire import as_dict, as_list, bad, not_translatable, unsupported
from gateway.vocabulary import Protocol


def estimate_tokens(texts: list[str]) -> int:
    return sum(max(1, (len(t) + 3) // 4) for t in texts)


def openai_inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value:
        raise unsupported("Token-array embedding inputs", "gemini", "Send strings.")
    raise bad("input", "expected a string or a non-empty array of strings")


def openai_request_to_gemini(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """An OpenAI embeddings body as a ``batchEmbedContents`` body."""
    model = GEMINI.body_model(upstream_model)
    requests = []
    for text in openai_inputs(body):
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if body.get("dimensions") is not None:
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}


def _encode(values: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def gemini_response_to_openai(
    body: dict[str, Any], client_model: str, texts: list[str], encoding_format: str = "float"
) -> dict[str, Any]:
    """A Gemini (batch) embedding answer as an OpenAI list; ``texts`` are the inputs."""
    if "embeddings" in body:
        vectors = [e.get("values") or [] for e in as_list(body["embeddings"], "embeddings")]
    else:
        vectors = [as_dict(body.get("embedding"), "embedding").get("values") or []]
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, encoding_format)}
        for i, v in enumerate(vectors)
    ]
    tokens = estimate_tokens(texts)
    return {
        "object": "list",
        "data": data,
        "model": client_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _content_text(content: Any, param: str) -> str:
    parts = as_list(as_dict(content, param).get("parts"), param + ".parts")
    texts = []
    for part in parts:
        if not isinstance(part, dict) or "text" not in part:
            raise not_translatable("Non-text embedding content", "Send text parts only.")
        texts.append(str(part["text"]))
    return " ".join(texts)


def gemini_request_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an ``embedContent`` or ``batchEmbedContents`` body."""
    if "requests" in body:
        return [
            _content_text(as_dict(r, f"requests[{i}]").get("content"), f"requests[{i}].content")
            for i, r in enumerate(as_list(body["requests"], "requests"))
        ]
    return [_content_text(body.get("content"), "content")]


def gemini_request_to_openai(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """A Gemini embedding body (single or batch) as an OpenAI embeddings body."""
    out: dict[str, Any] = {"model": upstream_model, "input": gemini_request_inputs(body)}
    first = body["requests"][0] if body.get("requests") else body
    dims = first.get("outputDimensionality") or first.get("output_dimensionality")
    if dims is not None:
        out["dimensions"] = dims
    out["encoding_format"] = "float"
    return out


def openai_response_to_gemini(body: dict[str, Any], *, batch: bool) -> dict[str, Any]:
    """An OpenAI embeddings answer as ``embedContent`` (one) or ``batchEmbedContents``."""
    items = sorted(as_list(body.get("data"), "data"), key=lambda d: d.get("index", 0))
    vectors = []
    for item in items:
        value = item.get("embedding")
        if isinstance(value, str):
            raw = base64.b64decode(value)
            value = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        vectors.append({"values": value})
    if batch:
        return {"embeddings": vectors}
    return {"embedding": vectors[0] if vectors else {"values": []}}


class EmbeddingsTranslation:
    """An embeddings request between OpenAI and Gemini shapes, or Gemini's as its batch."""

    __slots__ = ("body", "client", "provider")

    def __init__(self, client: Protocol, provider: Protocol, body: dict[str, Any]) -> None:
        if {client, provider} - {Protocol.OPENAI, Protocol.GEMINI}:
            raise UnsupportedFeature(
                f"Embeddings cannot go from {client.value} clients to {provider.value} providers."
            )
        self.client, self.provider, self.body = client, provider, body

    @staticmethod
    def needed(client: Protocol, provider: Protocol) -> bool:
        """Whether an embeddings request can go upstream only translated."""
        return client is not provider or provider is Protocol.GEMINI

    def upstream_request(self, upstream_model: str) -> tuple[dict[str, Any], frozenset[str]]:
        if self.client is Protocol.OPENAI:
            return openai_request_to_gemini(self.body, upstream_model), frozenset()
        if self.provider is Protocol.OPENAI:
            return gemini_request_to_openai(self.body, upstream_model), frozenset()
        return gemini_batch_request(self.body, upstream_model), frozenset()

    def client_body(self, upstream: Any, client_model: str) -> bytes:
        if self.client is Protocol.OPENAI:
            encoding = str(self.body.get("encoding_format") or "float")
            texts = openai_inputs(self.body)
            answer = gemini_response_to_openai(upstream, client_model, texts, encoding)
        elif self.provider is Protocol.GEMINI:
            answer = upstream if "requests" in self.body else gemini_single_response(upstream)
        else:
            answer = openai_response_to_gemini(upstream, batch="requests" in self.body)
        return orjson.dumps(answer)


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
