"""Anthropic's protocol: Messages and count_tokens, on Anthropic's API and on Vertex AI.

Claude on Vertex AI (a base URL ending in `/publishers/anthropic`) is the Messages API with
the model in the URL (`:rawPredict`, `:streamRawPredict` for SSE), the version in the body
(`anthropic_version`) instead of a header, and a Google OAuth token as Bearer. Its
count-tokens endpoint is one URL for every model, which reads the model from the body. The
`anthropic-beta` header goes on as on Anthropic's API: Vertex AI honours the betas it offers
(e.g. the 1M context window) and refuses the others, as Anthropic does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from gateway.api.anthropic_models import model_info, model_page
from gateway.errors import GatewayError, UnsupportedFeature
from gateway.protocols.adapter import ProtocolAdapter, bill, by_status, segment
from gateway.translate import Converter, anthropic_messages
from gateway.translate.anthropic_messages_stream import usage_to_canonical
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
"""The body's `anthropic_version` on Vertex AI (its only one; Anthropic's SDK sends it)."""
_VERTEX_SUFFIX = "/publishers/anthropic"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
_END = (b"message_stop",)


class AnthropicAdapter(ProtocolAdapter):
    protocol = Protocol.ANTHROPIC
    provider_types = frozenset({"anthropic"})
    converter: ClassVar[Converter] = anthropic_messages
    can_count_tokens = True

    def claims_path(self, path: str) -> bool:
        return path.startswith("/v1/messages")

    def claims_model_list(self, headers: Mapping[str, str], args: Mapping[str, Any]) -> bool:
        return bool(headers.get("anthropic-version"))  # every Anthropic SDK sends it

    def upstream_url(self, provider: Provider, op: Op, model: str, stream: bool) -> str:
        if is_vertex(provider):
            return _vertex_url(provider, op, model, stream)
        base = provider.base_url.rstrip("/").removesuffix("/v1")
        if op is Op.COUNT_TOKENS:
            return f"{base}/v1/messages/count_tokens"
        if op is not Op.CHAT:
            raise UnsupportedFeature(f"Anthropic providers do not offer {op.value}.")
        return f"{base}/v1/messages"

    def auth_headers(self, provider: Provider, secret: str | None) -> dict[str, str]:
        headers = super().auth_headers(provider, secret)
        if not is_vertex(provider):  # Vertex AI takes the version in the body
            headers["anthropic-version"] = provider.api_version or DEFAULT_ANTHROPIC_VERSION
        return headers

    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]:
        if is_vertex(provider):  # a static access token; token credentials add their own
            return {"authorization": f"Bearer {secret}"}
        return {"x-api-key": secret}

    def model_in_path(self, provider: Provider) -> bool:
        return is_vertex(provider)

    def finish_body(self, provider: Provider, op: Op, body: dict[str, Any]) -> dict[str, Any]:
        """On Vertex AI: `anthropic_version` set, as Anthropic's Vertex SDK does, and `model`
        dropped from a Messages body (its URL names it); count-tokens reads it from the body."""
        if not is_vertex(provider):
            return body
        finished = {**body, "anthropic_version": VERTEX_ANTHROPIC_VERSION}
        if op is not Op.COUNT_TOKENS:
            finished.pop("model", None)
        return finished

    def error_body(self, err: GatewayError) -> dict[str, Any]:
        kind = by_status(_ERROR_TYPES, err.status_code)
        return {"type": "error", "error": {"type": kind, "message": err.message}}

    def stream_error_event(self, err: GatewayError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(self.error_body(err)) + b"\n\n"

    def end_marks(self, op: Op) -> tuple[bytes, ...]:
        return _END

    def read_usage(self, data: Any, usage: Usage) -> None:
        if not isinstance(data, dict):
            return
        if data.get("type") == "message_start":
            data = data.get("message") or {}
        raw = data.get("usage")
        if isinstance(raw, dict):
            # message_start reports the input, message_delta the output so far: each
            # overwrites only what it names.
            read = usage_to_canonical(raw)
            bill(usage, read, prompt="input_tokens" in raw, completion="output_tokens" in raw)

    def model_entry(self, name: str) -> dict[str, Any]:
        return model_info(name)

    def model_list(self, names: list[str], args: Mapping[str, Any]) -> dict[str, Any]:
        return model_page(names, args)

    def count_answer(self, tokens: int) -> dict[str, Any]:
        return {"input_tokens": tokens}

    def count_of(self, answer: Any) -> int | None:
        value = answer.get("input_tokens") if isinstance(answer, dict) else None
        return value if isinstance(value, int) else None


def is_vertex(provider: Provider) -> bool:
    """The provider is Claude on Vertex AI (a `.../publishers/anthropic` base URL)."""
    return provider.base_url.rstrip("/").endswith(_VERTEX_SUFFIX)


def _vertex_url(provider: Provider, op: Op, model: str, stream: bool) -> str:
    base = provider.base_url.rstrip("/")
    if op is Op.COUNT_TOKENS:
        return f"{base}/models/count-tokens:rawPredict"
    if op is not Op.CHAT:
        raise UnsupportedFeature(f"Claude on Vertex AI does not offer {op.value}.")
    method = "streamRawPredict" if stream else "rawPredict"
    # Vertex AI's Claude versions are `name@date`; '@' may stand in a path segment (RFC 3986
    # pchar) and is what Anthropic's SDK sends, while a reserved '%40' need not mean the same.
    return f"{base}/models/{segment(model).replace('%40', '@')}:{method}"


ANTHROPIC = AnthropicAdapter()
