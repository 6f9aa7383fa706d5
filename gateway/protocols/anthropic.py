"""Anthropic's protocol: Messages and count_tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from gateway.api.anthropic_models import model_info, model_page
from gateway.errors import GatewayError, UnsupportedFeature
from gateway.protocols.adapter import ProtocolAdapter, bill, by_status
from gateway.translate import Converter, anthropic_messages
from gateway.translate.anthropic_messages_stream import usage_to_canonical
from gateway.usage.tokens import Usage
from gateway.vocabulary import Op, Protocol
from policies.models import Provider

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

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
        base = provider.base_url.rstrip("/").removesuffix("/v1")
        if op is Op.COUNT_TOKENS:
            return f"{base}/v1/messages/count_tokens"
        if op is not Op.CHAT:
            raise UnsupportedFeature(f"Anthropic providers do not offer {op.value}.")
        return f"{base}/v1/messages"

    def auth_headers(self, provider: Provider, secret: str | None) -> dict[str, str]:
        headers = super().auth_headers(provider, secret)
        headers["anthropic-version"] = provider.api_version or DEFAULT_ANTHROPIC_VERSION
        return headers

    def credential_headers(self, provider: Provider, secret: str) -> dict[str, str]:
        return {"x-api-key": secret}

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


ANTHROPIC = AnthropicAdapter()
